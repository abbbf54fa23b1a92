// js-libp2p node with DCUtR (@libp2p/dcutr) for punchgate's hole-punching
// interop tests (tests/interop/test_js_dcutr.py), meant to run behind an
// emulated NAT in a network namespace.
//
//   node js-dcutr.mjs [--listen MA[,MA…]] [--relay <relay-ma/p2p/ID>] [--announce MA[,MA…]]
//                     [--echo-port P] [--dial <relay-ma>/p2p-circuit/p2p/<ID>
//                     [--service NAME] [--data-bytes N]] [--no-dcutr] [--timeout S]
//                     [--public-test-net] [--key FILE] [--agent-version STR]
//
//   --listen     QUIC listen addresses (default /ip4/0.0.0.0/udp/0/quic-v1)
//   --relay      also listen on <relay>/p2p-circuit: reserve a slot there
//   --announce   appended to the node's own addresses (addresses.appendAnnounce):
//                js only puts VERIFIED addresses into identify and into its
//                DCUtR CONNECT, and an observed address is verified by AutoNAT
//                alone, so behind a NAT (no AutoNAT here) js would offer no
//                public address at all without this
//   --echo-port  serve /punchgate/tunnel/1.0.0 "echo" to 127.0.0.1:P (else echoed here),
//                also on limited (relayed) connections
//   --dial       after start (and the reservation, with --relay): dial through the
//                relay, wait for identify over that relayed connection, then with
//                --service run one tunnel request over it (N deterministic bytes)
//   --no-dcutr   leave the DCUtR service out
//   --public-test-net   DCUtR takes 203.0.113.0/24 (TEST-NET-3, the NAT bed's
//                "internet") as public: js's isPrivate() lists every documentation
//                range, so without this its DCUtR drops every address the bed
//                offers ("no dialable multiaddrs") before dialing anything. Only
//                the address filter changes; how js dials does not.
// Identify, ping and the circuit relay transport (noise + yamux for relayed
// connections) always run. The node runs until SIGTERM/SIGINT.
//
// stdout: JSON lines
//   {"event":"listening","peerId":…,"addrs":[…]}                    (node.getMultiaddrs() after start)
//   {"event":"reserved","peerId":…,"relay":…,"addrs":[<circuit addrs>]}
//   {"event":"connection","peerId":…,"direction":…,"remoteAddr":…,"connection":"relayed|direct","limited":bool}
//   {"event":"connection-closed", same fields}
//   {"event":"identify",…}                                           (as js-relay.mjs)
//   {"event":"connected","peerId":…,"remoteAddr":…,"connection":…}  (--dial)
//   {"event":"tunnel","peerId":…,"service":…,"connection":…,"accepted":…,"bytes_sent":n,…}
//                                                                    (--dial --service; requestTunnel's result)
//   {"event":"request"|"tunnel-closed",…}                            (served tunnels, see js-tunnel-proto.mjs)
//   {"event":"error","message":…} (exit 1), {"event":"stopped"} (on SIGTERM/SIGINT)
// stderr: diagnostics; DEBUG='libp2p:dcutr*,libp2p:quic*' adds js-libp2p's own
// logs of the DCUtR exchange and the QUIC dials.
//
// Why this node cannot hole punch over QUIC (what test_js_dcutr.py shows):
// @chainsafe/libp2p-quic 2.x listens on one UDP socket (a quinn server
// endpoint bound to the listen address) and dials from ANOTHER one (a quinn
// client endpoint bound to 0.0.0.0:0, created once per transport). Its DCUtR
// dial therefore leaves the NAT from a different mapping than the address it
// announced and the peer punches towards, and the listening socket never
// sends anything that would open its own NAT for the peer.

import './polyfill.mjs'

import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { dcutr } from '@libp2p/dcutr'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { multiaddr } from '@multiformats/multiaddr'
import {
  connectionInfo, connectionKind, createQuicNode, emit, fail, identifyToJson, intOpt, loadKey, log, p2pPeerId,
  parseArgs, runMain, stopOnSignals
} from './js-common.mjs'
import { PROTOCOL, requestTunnel, serveTunnel } from './js-tunnel-proto.mjs'

const POLL_MS = 100
const TEST_NET = /^\/ip4\/203\.0\.113\.\d+\/udp\//

// --public-test-net: the dcutr service's dialable-address filter (an instance
// method, also used through `this` by both exchange roles) lets TEST-NET-3
// addresses through as long as a transport can dial them; anything else goes
// to js's own filter.
function treatTestNetAsPublic (svc) {
  const own = svc.getDialableMultiaddrs.bind(svc)
  svc.getDialableMultiaddrs = (raw) => {
    const out = []
    for (const bytes of raw) {
      let ma
      try { ma = multiaddr(bytes) } catch { continue }
      const s = ma.toString()
      if (TEST_NET.test(s) && !s.includes('/p2p-circuit') && svc.transportManager.dialTransportForMultiaddr(ma) != null) {
        out.push(ma)
      } else {
        out.push(...own([bytes]))
      }
    }
    return out
  }
}

function list (opt) {
  return opt == null ? [] : opt.split(',').map(s => s.trim()).filter(s => s !== '')
}

function circuitAddrs (node) {
  return node.getMultiaddrs().map(a => a.toString()).filter(a => a.includes('/p2p-circuit'))
}

function connectionEvent (event, c) {
  return { event, peerId: c.remotePeer.toString(), direction: c.direction, remoteAddr: c.remoteAddr.toString(), ...connectionInfo(c) }
}

let running = false // from then on a stray error only gets logged

async function main () {
  const argv = process.argv.slice(2)
  const flag = (name) => {
    const i = argv.indexOf(name)
    if (i !== -1) argv.splice(i, 1)
    return i !== -1
  }
  const noDcutr = flag('--no-dcutr')
  const publicTestNet = flag('--public-test-net')
  const opts = parseArgs(argv)
  if (opts._.length > 0) throw new Error(`unexpected argument ${opts._[0]} (see the header of js-dcutr.mjs)`)
  const listen = list(opts.listen)
  if (listen.length === 0) listen.push('/ip4/0.0.0.0/udp/0/quic-v1')
  let relayId = null
  if (opts.relay != null) {
    const relayMa = multiaddr(opts.relay)
    relayId = p2pPeerId(relayMa)
    if (relayId == null || opts.relay.includes('/p2p-circuit')) throw new Error(`--relay wants the relay's own address with /p2p/: ${opts.relay}`)
    listen.push(relayMa.encapsulate('/p2p-circuit').toString())
  }
  const echoPort = opts['echo-port'] == null ? null : intOpt(opts, 'echo-port', 0, 1, 65535)
  const total = intOpt(opts, 'data-bytes', 0, 0, 2 ** 40)
  const timeoutS = intOpt(opts, 'timeout', 30, 1, 3600)

  const services = { identify: identify(), ping: ping() }
  if (!noDcutr) services.dcutr = dcutr()
  // start: false: the tunnel handler is registered before identify runs with anyone
  const node = await createQuicNode({
    privateKey: await loadKey(opts.key),
    listen,
    userAgent: opts['agent-version'],
    services,
    extraTransports: [circuitRelayTransport({ reservationCompletionTimeout: 10_000 })],
    extra: {
      start: false,
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      addresses: { appendAnnounce: list(opts.announce) }
    }
  })
  node.addEventListener('connection:open', (evt) => {
    const c = evt.detail
    log(`connection open peer=${c.remotePeer} direction=${c.direction} remoteAddr=${c.remoteAddr} limited=${c.limits != null}`)
    emit(connectionEvent('connection', c))
  })
  node.addEventListener('connection:close', (evt) => {
    const c = evt.detail
    log(`connection closed peer=${c.remotePeer} direction=${c.direction} remoteAddr=${c.remoteAddr}`)
    emit(connectionEvent('connection-closed', c))
  })
  node.addEventListener('peer:identify', (evt) => {
    const j = identifyToJson(evt.detail)
    log(`identify peer=${j.peerId} agent=${JSON.stringify(j.agentVersion)} connection=${j.connection} listenAddrs=${j.listenAddrs.join(',')}`)
    emit(j)
  })
  if (publicTestNet) {
    if (node.services.dcutr == null) throw new Error('--public-test-net needs the dcutr service')
    treatTestNetAsPublic(node.services.dcutr)
  }
  await node.handle(PROTOCOL, (stream, connection) => {
    serveTunnel(stream, connection, echoPort, null, { connection: connectionKind(connection) })
      .catch(err => log('serveTunnel:', err))
  }, { maxInboundStreams: 256, runOnLimitedConnection: true })
  stopOnSignals(node)

  const watchdog = setTimeout(() => { fail(`not set up within ${timeoutS}s`) }, timeoutS * 1000)
  await node.start() // with --relay: reserves, or throws
  const addrs = node.getMultiaddrs().map(a => a.toString())
  log(`listening peer=${node.peerId} addrs=${addrs.join(',')}`)
  emit({ event: 'listening', peerId: node.peerId.toString(), addrs })

  if (relayId != null) {
    // the listener announces the circuit addresses just after the reservation
    while (circuitAddrs(node).length === 0) await new Promise(resolve => setTimeout(resolve, POLL_MS))
    const reserved = circuitAddrs(node)
    log(`reserved on ${relayId} addrs=${reserved.join(',')}`)
    emit({ event: 'reserved', peerId: node.peerId.toString(), relay: relayId, addrs: reserved })
  }
  if (opts.dial != null) await dialThrough(node, opts.dial, opts.service ?? null, total)
  clearTimeout(watchdog)
  running = true
  // runs until killed (the QUIC listener keeps the process alive)
}

async function dialThrough (node, target, service, total) {
  const ma = multiaddr(target)
  const expected = p2pPeerId(ma)
  if (!target.includes('/p2p-circuit/') || expected == null) throw new Error(`--dial wants <relay-ma>/p2p-circuit/p2p/<ID>: ${target}`)
  // registered before dialing: identify runs as soon as the connection opens
  let identified = false
  let wake = null
  node.addEventListener('peer:identify', (evt) => {
    if (evt.detail.peerId.toString() !== expected || connectionKind(evt.detail.connection) !== 'relayed') return
    identified = true
    wake?.()
  })
  log(`dialing ${target}`)
  const conn = await node.dial(ma, { signal: AbortSignal.timeout(20_000) })
  if (conn.remotePeer.toString() !== expected) throw new Error(`peer id mismatch: expected ${expected}, got ${conn.remotePeer}`)
  emit({ event: 'connected', peerId: expected, remoteAddr: conn.remoteAddr.toString(), ...connectionInfo(conn) })
  if (!identified) {
    await new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no identify from ${expected} over the relayed connection within 15 s`)), 15_000)
      wake = () => { clearTimeout(t); resolve() }
    })
  }
  if (service == null) return
  const stream = await conn.newStream(PROTOCOL, { runOnLimitedConnection: true, signal: AbortSignal.timeout(15_000) })
  const result = await requestTunnel(stream, service, total)
  emit({ ...result, event: 'tunnel', peerId: expected, service, ...connectionInfo(conn) })
}

await runMain(main, { keepRunning: () => running })
