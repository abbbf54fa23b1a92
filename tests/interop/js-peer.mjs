// js-libp2p peer used by punchgate's interop tests.
//
//   node js-peer.mjs listen [--port 0] [--host 127.0.0.1]
//   node js-peer.mjs dial <multiaddr-with-/p2p/> [--count 3] [--timeout 30]
//   node js-peer.mjs peer-id
//
// Common options:
//   --key FILE            identity: libp2p-protobuf-encoded private key; created
//                         (Ed25519) if FILE does not exist. Default: fresh Ed25519 key.
//   --agent-version STR   identify agentVersion to announce
//                         (default: js-libp2p's own, "js-libp2p/<ver> node/<ver>")
//
// stdout: machine-readable JSON, one object per line (see emit() in js-common.mjs).
// stderr: human diagnostics (set DEBUG=libp2p:* for libp2p's own logs).
//
// Events on stdout:
//   {"event":"listening","peerId":…,"addrs":[…],"agentVersion":…,"protocolVersion":…}   (listen)
//   {"event":"started","peerId":…,"agentVersion":…,"protocolVersion":…}                 (dial)
//   {"event":"connection","peerId":…,"direction":"inbound|outbound","remoteAddr":…}
//   {"event":"identify","peerId":…,"protocolVersion":…,"agentVersion":…,"protocols":[…],
//    "listenAddrs":[…],"observedAddr":…|null}
//   {"event":"ping","peerId":…,"seq":n,"rtt_ms":…}                                        (dial)
//   {"event":"done","ok":true}                                                           (dial)
//   {"event":"error","message":…}                                                        (exit 1)
//   {"event":"stopped"}                                                                  (listen, on SIGTERM/SIGINT)
//   {"event":"peer-id","peerId":…}                                                       (peer-id)

import './polyfill.mjs'

import { identify } from '@libp2p/identify'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { ping } from '@libp2p/ping'
import { multiaddr } from '@multiformats/multiaddr'
import { userAgent } from 'libp2p/user-agent'
import { name as libp2pName, version as libp2pVersion } from 'libp2p/version'
import {
  createQuicNode, emit, exit, fail, intOpt, loadKey, log, p2pPeerId, parseArgs, runMain, stopNode, stopOnSignals
} from './js-common.mjs'

const PROTOCOL_VERSION = 'ipfs/0.1.0' // @libp2p/identify default ("<prefix>/0.1.0")
const DEFAULT_AGENT_VERSION = userAgent(libp2pName, libp2pVersion) // same as libp2p's default

// ---------------------------------------------------------------- node

function identifyToJson (detail) {
  return {
    event: 'identify',
    peerId: detail.peerId.toString(),
    protocolVersion: detail.protocolVersion ?? null,
    agentVersion: detail.agentVersion ?? null,
    protocols: [...(detail.protocols ?? [])],
    listenAddrs: (detail.listenAddrs ?? []).map(a => a.toString()),
    observedAddr: detail.observedAddr != null ? detail.observedAddr.toString() : null
  }
}

function agentVersion (opts) {
  return opts['agent-version'] ?? DEFAULT_AGENT_VERSION
}

async function createNode (opts, { listen }) {
  const node = await createQuicNode({
    privateKey: await loadKey(opts.key),
    listen,
    userAgent: agentVersion(opts),
    services: {
      identify: identify(),
      ping: ping()
    }
  })

  node.addEventListener('connection:open', (evt) => {
    const c = evt.detail
    log(`connection open peer=${c.remotePeer} direction=${c.direction} remoteAddr=${c.remoteAddr}`)
    emit({ event: 'connection', peerId: c.remotePeer.toString(), direction: c.direction, remoteAddr: c.remoteAddr.toString() })
  })
  node.addEventListener('connection:close', (evt) => {
    const c = evt.detail
    log(`connection closed peer=${c.remotePeer} direction=${c.direction}`)
  })
  return node
}

// ---------------------------------------------------------------- modes

async function modeListen (opts) {
  const port = intOpt(opts, 'port', 0, 0, 65535)
  const host = opts.host ?? '127.0.0.1'
  const node = await createNode(opts, { listen: [`/ip4/${host}/udp/${port}/quic-v1`] })

  node.addEventListener('peer:identify', (evt) => {
    const j = identifyToJson(evt.detail)
    log(`identify peer=${j.peerId} agent=${JSON.stringify(j.agentVersion)}`)
    emit(j)
  })

  stopOnSignals(node)

  await node.start() // no-op if already started by createLibp2p
  const addrs = node.getMultiaddrs().map(a => a.toString())
  log(`listening peer=${node.peerId} addrs=${addrs.join(',')}`)
  emit({ event: 'listening', peerId: node.peerId.toString(), addrs, agentVersion: agentVersion(opts), protocolVersion: PROTOCOL_VERSION })
  // runs until killed
}

async function modeDial (opts) {
  const target = opts._[1]
  if (target == null) throw new Error('usage: js-peer.mjs dial <multiaddr-with-/p2p/> [--count N] [--timeout S]')
  const count = intOpt(opts, 'count', 3, 0, 10_000)
  const timeoutS = intOpt(opts, 'timeout', 30, 1, 3600)
  const identifyTimeoutMs = Math.min(10_000, timeoutS * 1000)

  // Whole-mode watchdog: never hang.
  const watchdog = setTimeout(() => { fail(`dial mode timed out after ${timeoutS}s`) }, timeoutS * 1000)
  const overall = AbortSignal.timeout(timeoutS * 1000)

  const ma = multiaddr(target)
  const expected = p2pPeerId(ma)
  if (expected == null) throw new Error(`multiaddr has no /p2p/ component: ${target}`)

  const node = await createNode(opts, { listen: [] })
  emit({ event: 'started', peerId: node.peerId.toString(), agentVersion: agentVersion(opts), protocolVersion: PROTOCOL_VERSION })

  // Register before dialing: identify runs as soon as the connection opens
  // and can finish before the pings do.
  const identified = new Map()
  let identifyWaiter = null
  node.addEventListener('peer:identify', (evt) => {
    const j = identifyToJson(evt.detail)
    log(`identify peer=${j.peerId} agent=${JSON.stringify(j.agentVersion)}`)
    if (!identified.has(j.peerId)) identified.set(j.peerId, j)
    if (identifyWaiter != null && j.peerId === expected) identifyWaiter(j)
  })

  let ok = false
  try {
    log(`dialing ${target}`)
    const conn = await node.dial(ma, { signal: AbortSignal.any([overall, AbortSignal.timeout(15_000)]) })
    const remote = conn.remotePeer.toString()
    log(`connected peer=${remote} remoteAddr=${conn.remoteAddr}`)
    if (remote !== expected) {
      // libp2p should already have refused this; belt and braces
      throw new Error(`peer id mismatch: expected ${expected}, got ${remote}`)
    }

    for (let seq = 1; seq <= count; seq++) {
      const rtt = await node.services.ping.ping(conn.remotePeer, { signal: AbortSignal.any([overall, AbortSignal.timeout(10_000)]) })
      emit({ event: 'ping', peerId: remote, seq, rtt_ms: rtt })
    }

    let idj = identified.get(expected)
    if (idj == null) {
      log('waiting for identify of remote')
      idj = await new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no identify from ${expected} within ${identifyTimeoutMs} ms`)), identifyTimeoutMs)
        identifyWaiter = (j) => { clearTimeout(t); resolve(j) }
      })
    }
    emit(idj)
    ok = true
  } catch (err) {
    clearTimeout(watchdog)
    await stopNode(node)
    await fail(err)
    return
  }
  clearTimeout(watchdog)
  await stopNode(node)
  emit({ event: 'done', ok })
  await exit(0)
}

async function modePeerId (opts) {
  const key = await loadKey(opts.key)
  emit({ event: 'peer-id', peerId: peerIdFromPrivateKey(key).toString() })
  await exit(0)
}

// ---------------------------------------------------------------- main

let mode = null
await runMain(async () => {
  const opts = parseArgs(process.argv.slice(2))
  mode = opts._[0]
  if (mode === 'listen') {
    await modeListen(opts)
  } else if (mode === 'dial') {
    await modeDial(opts)
  } else if (mode === 'peer-id') {
    await modePeerId(opts)
  } else {
    throw new Error('usage: js-peer.mjs listen [--port P] [--host H] | dial <multiaddr/p2p/ID> [--count N] [--timeout S] | peer-id  [--key FILE] [--agent-version STR]')
  }
}, { keepRunning: () => mode === 'listen' })
