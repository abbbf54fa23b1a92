// js-libp2p Kademlia DHT peer used by punchgate's kad interop tests
// (tests/interop/test_js_kad.py). @libp2p/kad-dht speaking punchgate's DHT
// protocol id, /punchgate/kad/1.0.0 (the libp2p kad-dht wire format), in
// server mode, over QUIC on loopback.
//
//   node js-kad.mjs [options] [operations…]
//
// Options:
//   --listen MA          listen address (repeatable; default /ip4/127.0.0.1/udp/0/quic-v1)
//   --bootstrap MA       dial this peer (multiaddr with /p2p/) at start and wait
//                        until it is in our routing table (repeatable)
//   --key FILE           identity (libp2p-protobuf private key; created if missing)
//   --op-timeout S       per-operation timeout in seconds (default 30)
//   --bootstrap-timeout S  (default 20)
//   --stay               after the operations, keep running until SIGTERM/SIGINT
//                        (default: exit 0 after the last operation)
//   --want N             --find-providers stops once N providers were found
//                        (default: k, i.e. the whole query in a small network)
//
// Operations, run in command-line order after bootstrapping:
//   --provide KEY              dht.provide(CID)
//   --find-providers KEY       dht.findProviders(CID) (whole query, or until k found)
//   --put RKEY VALUE           dht.put(RKEY, VALUE)
//   --get RKEY                 dht.get(RKEY)
//   --find-peer PEER_ID        dht.findPeer(PEER_ID)
//   --wait-peer PEER_ID        wait until PEER_ID is in our routing table
//   --routing-table            print the routing table
//
// KEY (a CID): a CID string (bafy…/Qm…), or hex:<multihash hex> (taken as a
// CIDv1 raw with that multihash; the DHT key is the multihash bytes either way).
// RKEY / VALUE: UTF-8 text, or hex:<hex> for arbitrary bytes.
//
// Records: the "punchgate-test" namespace (keys /punchgate-test/…) has a
// validator accepting any value and a selector choosing the first record.
// Addresses: peerInfoMapper is passthroughMapper (the default mapper drops
// private/loopback addresses, and with them every loopback peer/provider).
// allowQueryWithZeroPeers: true (a lone node can provide/put locally).
//
// stdout: one JSON object per line:
//   {"event":"listening","peerId":…,"addrs":[…],"protocol":…,"mode":"server"}  (once our own
//    addresses are in our peer store, see waitSelfAddrs())
//   {"event":"peer-added","peerId":…}           (routing table, at any time)
//   {"event":"peer-removed","peerId":…}
//   {"event":"bootstrapped","peers":[…],"routingTable":[…]}
//   {"event":"provided","key":…,"cid":…,"peers":[ids that took ADD_PROVIDER],"errors":[…]}
//   {"event":"providers","key":…,"cid":…,"providers":[{"peerId":…,"addrs":[…],"from":…}],
//    "responders":[ids that answered GET_PROVIDERS],"errors":[…],"timedOut":bool}
//   {"event":"put","key":…,"key_hex":…,"peers":[ids that echoed the record],"errors":[…]}
//   {"event":"value","key":…,"key_hex":…,"found":bool,"value":utf8|null,"value_hex":…|null,
//    "from":id|null,"records":[{"from":…,"value_hex":…,"key_hex":…}],"errors":[…]}
//   {"event":"peer","peerId":…,"found":bool,"addrs":[…]}
//   {"event":"routing-table","peers":[…]}
//   {"event":"ready"}    (--stay: operations done)   {"event":"done"}  (no --stay: exiting 0)
//   {"event":"error","message":…}  (exit 1)          {"event":"stopped"}  (SIGTERM/SIGINT)
// "errors" entries are {"peerId":…,"message":…} from QUERY_ERROR events.
// stderr: diagnostics (DEBUG='libp2p:kad-dht*' for kad-dht's own logs).

import './polyfill.mjs'

import { identify } from '@libp2p/identify'
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { peerIdFromString } from '@libp2p/peer-id'
import { ping } from '@libp2p/ping'
import { multiaddr } from '@multiformats/multiaddr'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import * as Digest from 'multiformats/hashes/digest'
import {
  createQuicNode, emit, errorMessage, exit, loadKey, log, p2pPeerId, runMain, stopNode, stopOnSignals
} from './js-common.mjs'

const PROTOCOL = '/punchgate/kad/1.0.0'
const TEST_NAMESPACE = 'punchgate-test'

// ---------------------------------------------------------------- args

const OPS = { provide: 1, 'find-providers': 1, put: 2, get: 1, 'find-peer': 1, 'wait-peer': 1, 'routing-table': 0 }
const REPEATABLE = new Set(['listen', 'bootstrap'])
const VALUED = new Set(['listen', 'bootstrap', 'key', 'op-timeout', 'bootstrap-timeout', 'want'])
const FLAGS = new Set(['stay'])

function parseArgs (argv) {
  const opts = { listen: [], bootstrap: [], ops: [] }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${JSON.stringify(a)}`)
    const name = a.slice(2)
    const take = (n) => {
      if (i + n >= argv.length) throw new Error(`${a} needs ${n} argument(s)`)
      const vals = argv.slice(i + 1, i + 1 + n)
      i += n
      return vals
    }
    if (Object.hasOwn(OPS, name)) {
      opts.ops.push({ op: name, args: take(OPS[name]) })
    } else if (VALUED.has(name)) {
      const [v] = take(1)
      if (REPEATABLE.has(name)) opts[name].push(v)
      else opts[name] = v
    } else if (FLAGS.has(name)) {
      opts[name] = true
    } else {
      throw new Error(`unknown option ${a}`)
    }
  }
  return opts
}

function numOpt (opts, key, def) {
  if (opts[key] == null) return def
  const v = Number(opts[key])
  if (!Number.isFinite(v) || v <= 0) throw new Error(`invalid --${key}: ${opts[key]}`)
  return v
}

function hexToBytes (hex, what) {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) throw new Error(`bad hex in ${what}: ${JSON.stringify(hex)}`)
  return Uint8Array.from(Buffer.from(hex, 'hex'))
}

function bytesArg (s, what) {
  return s.startsWith('hex:') ? hexToBytes(s.slice(4), what) : new TextEncoder().encode(s)
}

function cidArg (s) {
  if (s.startsWith('hex:')) {
    const mh = hexToBytes(s.slice(4), 'CID multihash')
    return CID.createV1(raw.code, Digest.decode(mh))
  }
  return CID.parse(s)
}

const toHex = (b) => Buffer.from(b).toString('hex')

function utf8OrNull (b) {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(b)
  } catch {
    return null
  }
}

function queryError (ev) {
  return { peerId: ev.from?.toString() ?? null, message: errorMessage(ev.error) }
}

// ---------------------------------------------------------------- node

async function createNode (opts) {
  const listen = opts.listen.length > 0 ? opts.listen : ['/ip4/127.0.0.1/udp/0/quic-v1']
  return createQuicNode({
    privateKey: await loadKey(opts.key),
    listen,
    services: {
      identify: identify(),
      ping: ping(), // kad-dht pings new routing-table contacts with /ipfs/ping/1.0.0
      dht: kadDHT({
        protocol: PROTOCOL,
        clientMode: false, // serve the DHT (the default would stay client on a loopback-only node)
        peerInfoMapper: passthroughMapper, // keep loopback addresses
        allowQueryWithZeroPeers: true,
        validators: { [TEST_NAMESPACE]: async () => {} },
        selectors: { [TEST_NAMESPACE]: () => 0 }
      })
    }
  })
}

async function inRoutingTable (dht, peerId) {
  return (await dht.routingTable.find(peerId)) != null
}

function routingTablePeers (dht) {
  const out = []
  for (const c of dht.routingTable.kb.toIterable()) out.push(c.peerId.toString())
  return out
}

async function waitInRoutingTable (dht, peerId, timeoutMs) {
  const deadline = Date.now() + timeoutMs
  while (!(await inRoutingTable(dht, peerId))) {
    if (Date.now() >= deadline) throw new Error(`${peerId} not in the routing table after ${timeoutMs} ms (routing table: ${JSON.stringify(routingTablePeers(dht))})`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

async function waitSelfAddrs (node, timeoutMs) {
  const deadline = Date.now() + timeoutMs
  while (true) {
    try {
      if ((await node.peerStore.get(node.peerId)).addresses.length > 0) return
    } catch (err) {
      if (err.name !== 'NotFoundError') throw err
    }
    if (Date.now() >= deadline) throw new Error(`our own addresses did not reach the peer store within ${timeoutMs} ms`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

// ---------------------------------------------------------------- operations

async function opProvide (dht, arg, signal) {
  const cid = cidArg(arg)
  const peers = []
  const errors = []
  for await (const ev of dht.provide(cid, { signal })) {
    if (ev.name === 'PEER_RESPONSE' && ev.messageName === 'ADD_PROVIDER') peers.push(ev.from.toString())
    else if (ev.name === 'QUERY_ERROR') errors.push(queryError(ev))
  }
  log(`provided ${cid} to ${peers.length} peer(s): ${peers.join(',')}`)
  emit({ event: 'provided', key: arg, cid: cid.toString(), multihash_hex: toHex(cid.multihash.bytes), peers, errors })
}

async function opFindProviders (dht, arg, signal, want) {
  const cid = cidArg(arg)
  const providers = []
  const responders = []
  const errors = []
  let timedOut = false
  try {
    for await (const ev of dht.findProviders(cid, { signal })) {
      if (ev.name === 'PEER_RESPONSE' && ev.messageName === 'GET_PROVIDERS') {
        responders.push(ev.from.toString())
        log(`GET_PROVIDERS response from ${ev.from}: providers=${JSON.stringify(ev.providers.map(p => [p.id.toString(), p.multiaddrs.map(String)]))} closer=${JSON.stringify(ev.closer.map(p => [p.id.toString(), p.multiaddrs.map(String)]))}`)
      } else if (ev.name === 'PROVIDER') {
        for (const p of ev.providers) {
          providers.push({ peerId: p.id.toString(), addrs: p.multiaddrs.map(String), from: ev.from.toString() })
        }
        if (providers.length >= want) break // ends the query (aborts what is in flight)
      } else if (ev.name === 'QUERY_ERROR') {
        errors.push(queryError(ev))
      }
    }
  } catch (err) {
    if (!signal.aborted) throw err
    timedOut = true
  }
  emit({ event: 'providers', key: arg, cid: cid.toString(), providers, responders, errors, timedOut })
}

async function opPut (dht, keyArg, valueArg, signal) {
  const key = bytesArg(keyArg, 'record key')
  const value = bytesArg(valueArg, 'record value')
  const peers = []
  const errors = []
  for await (const ev of dht.put(key, value, { signal })) {
    if (ev.name === 'PEER_RESPONSE' && ev.messageName === 'PUT_VALUE') {
      // put() adds a QUERY_ERROR ("Value not put correctly") when the echo differs
      if (ev.record != null && Buffer.from(ev.record.value).equals(Buffer.from(value))) peers.push(ev.from.toString())
      else log(`PUT_VALUE response from ${ev.from} does not echo the record: ${ev.record == null ? 'no record' : toHex(ev.record.value)}`)
    } else if (ev.name === 'QUERY_ERROR') {
      errors.push(queryError(ev))
    }
  }
  emit({ event: 'put', key: keyArg, key_hex: toHex(key), peers, errors })
}

async function opGet (dht, keyArg, signal) {
  const key = bytesArg(keyArg, 'record key')
  const records = []
  const errors = []
  let best = null
  try {
    for await (const ev of dht.get(key, { signal })) {
      if (ev.name === 'PEER_RESPONSE' && ev.messageName === 'GET_VALUE' && ev.record != null) {
        records.push({ from: ev.from.toString(), value_hex: toHex(ev.record.value), key_hex: toHex(ev.record.key) })
      } else if (ev.name === 'VALUE') {
        best = ev
      } else if (ev.name === 'QUERY_ERROR') {
        errors.push(queryError(ev))
      }
    }
  } catch (err) {
    if (!signal.aborted) throw err
    errors.push({ peerId: null, message: `timed out: ${errorMessage(err)}` })
  }
  emit({
    event: 'value',
    key: keyArg,
    key_hex: toHex(key),
    found: best != null,
    value: best != null ? utf8OrNull(best.value) : null,
    value_hex: best != null ? toHex(best.value) : null,
    from: best != null ? best.from.toString() : null,
    records,
    errors
  })
}

async function opFindPeer (dht, arg, signal) {
  const id = peerIdFromString(arg)
  let found = null
  try {
    for await (const ev of dht.findPeer(id, { signal })) {
      if (ev.name === 'FINAL_PEER') { found = ev.peer; break }
    }
  } catch (err) {
    if (err.name !== 'NotFoundError' && !signal.aborted) throw err
  }
  emit({ event: 'peer', peerId: arg, found: found != null, addrs: found != null ? found.multiaddrs.map(String) : [] })
}

// ---------------------------------------------------------------- main

async function run (opts) {
  const opTimeoutMs = numOpt(opts, 'op-timeout', 30) * 1000
  const bootstrapTimeoutMs = numOpt(opts, 'bootstrap-timeout', 20) * 1000
  const want = numOpt(opts, 'want', Infinity)
  // validate every operation argument before starting anything
  for (const { op, args } of opts.ops) {
    if (op === 'provide' || op === 'find-providers') cidArg(args[0])
    if (op === 'put') { bytesArg(args[0], 'record key'); bytesArg(args[1], 'record value') }
    if (op === 'get') bytesArg(args[0], 'record key')
    if (op === 'find-peer' || op === 'wait-peer') peerIdFromString(args[0])
  }
  const bootstrap = opts.bootstrap.map(s => {
    const ma = multiaddr(s)
    const id = p2pPeerId(ma)
    if (id == null) throw new Error(`--bootstrap multiaddr has no /p2p/ component: ${s}`)
    return { ma, id: peerIdFromString(id) }
  })

  const node = await createNode(opts)
  const dht = node.services.dht

  stopOnSignals(node)

  dht.routingTable.addEventListener('peer:add', (evt) => {
    log(`routing table: added ${evt.detail}`)
    emit({ event: 'peer-added', peerId: evt.detail.toString() })
  })
  dht.routingTable.addEventListener('peer:remove', (evt) => {
    log(`routing table: removed ${evt.detail}`)
    emit({ event: 'peer-removed', peerId: evt.detail.toString() })
  })
  node.addEventListener('connection:open', (evt) => {
    const c = evt.detail
    log(`connection open peer=${c.remotePeer} direction=${c.direction} remoteAddr=${c.remoteAddr}`)
  })
  node.addEventListener('peer:identify', (evt) => {
    const d = evt.detail
    log(`identify peer=${d.peerId} protocols=${JSON.stringify(d.protocols)} listenAddrs=${JSON.stringify(d.listenAddrs.map(String))}`)
  })

  await node.start()
  // libp2p copies our own addresses into the peer store only after a 1 s debounce
  // (address-manager); until then kad-dht answers GET_PROVIDERS for our own
  // records with no providers (a provider without addresses is filtered out)
  // and sends ADD_PROVIDER without addresses. Wait for them.
  await waitSelfAddrs(node, bootstrapTimeoutMs)
  const addrs = node.getMultiaddrs().map(String)
  log(`listening peer=${node.peerId} addrs=${addrs.join(',')} mode=${dht.getMode()}`)
  emit({ event: 'listening', peerId: node.peerId.toString(), addrs, protocol: PROTOCOL, mode: dht.getMode() })

  if (bootstrap.length > 0) {
    for (const b of bootstrap) {
      log(`dialing bootstrap ${b.ma}`)
      await node.dial(b.ma, { signal: AbortSignal.timeout(bootstrapTimeoutMs) })
    }
    // identify -> topology onConnect (needs the remote to list PROTOCOL) -> ping -> routing table
    for (const b of bootstrap) await waitInRoutingTable(dht, b.id, bootstrapTimeoutMs)
    emit({ event: 'bootstrapped', peers: bootstrap.map(b => b.id.toString()), routingTable: routingTablePeers(dht) })
  }

  for (const { op, args } of opts.ops) {
    log(`operation --${op} ${args.join(' ')}`)
    const signal = AbortSignal.timeout(opTimeoutMs)
    if (op === 'provide') await opProvide(dht, args[0], signal)
    else if (op === 'find-providers') await opFindProviders(dht, args[0], signal, want)
    else if (op === 'put') await opPut(dht, args[0], args[1], signal)
    else if (op === 'get') await opGet(dht, args[0], signal)
    else if (op === 'find-peer') await opFindPeer(dht, args[0], signal)
    else if (op === 'wait-peer') {
      await waitInRoutingTable(dht, peerIdFromString(args[0]), opTimeoutMs)
      emit({ event: 'routing-table', peers: routingTablePeers(dht) })
    } else if (op === 'routing-table') emit({ event: 'routing-table', peers: routingTablePeers(dht) })
  }

  if (opts.stay) {
    emit({ event: 'ready' })
    return // runs until killed
  }
  await stopNode(node)
  emit({ event: 'done' })
  await exit(0)
}

let stay = false
await runMain(async () => {
  const opts = parseArgs(process.argv.slice(2))
  stay = opts.stay === true
  await run(opts)
}, { keepRunning: () => stay })
