// js-libp2p side of punchgate's circuit relay v2 interop tests.
//
//   node js-relay.mjs relay [--port 0]
//       A js relay: QUIC, identify, circuit relay v2 hop server without default
//       limits. stdout: {"event":"listening","peerId":…,"addrs":[…]} then
//       {"event":"reservation","peerId":<reserving peer>} per reservation.
//   node js-relay.mjs reserve <relay multiaddr with /p2p/>
//       A js node behind the relay: reserves a slot (listens on
//       <relay>/p2p-circuit) and serves /punchgate/tunnel/1.0.0 "echo" (echoing
//       itself), also over relayed connections. stdout:
//       {"event":"reserved","peerId":…,"addrs":[…/p2p-circuit…]}.
//   node js-relay.mjs dial <relay multiaddr with /p2p/> <target peer id> [--data-bytes N]
//       Dials <relay>/p2p-circuit/p2p/<target>, waits for identify of the target
//       over that connection, then sends N bytes through its "echo" tunnel
//       service. stdout: {"event":"done","bytes_sent":…,"bytes_received":…,
//       "sha256_sent":…,"sha256_received":…} and exit 0, or {"event":"error"} / 1.
//
// Every mode also prints {"event":"identify","peerId":…,"agentVersion":…,
// "protocols":[…],"connection":"relayed"|"direct"} when identify with a peer
// completes: the evidence that identify works over relayed connections.
// Relayed connections need noise + yamux here (QUIC brings its own security).

import './polyfill.mjs'

import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayServer, circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { identify } from '@libp2p/identify'
import { multiaddr } from '@multiformats/multiaddr'
import {
  createQuicNode, emit, exit, fail, intOpt, log, parseArgs, runMain, stopNode, stopOnSignals
} from './js-common.mjs'
import { PROTOCOL, StreamReader, exchangeData, frame, readFrame, send, serveTunnel } from './js-tunnel-proto.mjs'

const UPGRADE = { connectionEncrypters: [noise()], streamMuxers: [yamux()] }

async function createNode ({ listen, relayServer = false }) {
  const services = { identify: identify() }
  if (relayServer) {
    services.relay = circuitRelayServer({ reservations: { applyDefaultLimit: false, maxReservations: 64 } })
  }
  const node = await createQuicNode({
    listen,
    services,
    extraTransports: [circuitRelayTransport()],
    extra: UPGRADE
  })
  node.addEventListener('peer:identify', (evt) => {
    const d = evt.detail
    emit({
      event: 'identify',
      peerId: d.peerId.toString(),
      agentVersion: d.agentVersion ?? null,
      protocols: d.protocols ?? [],
      connection: d.connection?.remoteAddr?.toString().includes('/p2p-circuit') ? 'relayed' : 'direct'
    })
  })
  return node
}

function circuitAddrs (node) {
  return node.getMultiaddrs().map(a => a.toString()).filter(a => a.includes('/p2p-circuit'))
}

async function modeRelay (opts) {
  const port = intOpt(opts, 'port', 0, 0, 65535)
  const node = await createNode({ listen: [`/ip4/127.0.0.1/udp/${port}/quic-v1`], relayServer: true })
  node.services.relay.addEventListener('relay:reservation', (evt) => {
    emit({ event: 'reservation', peerId: evt.detail.peer?.toString?.() ?? String(evt.detail.peer ?? '') })
  })
  stopOnSignals(node)
  await node.start()
  const addrs = node.getMultiaddrs().map(a => a.toString())
  log(`relay listening peer=${node.peerId} addrs=${addrs.join(',')}`)
  emit({ event: 'listening', peerId: node.peerId.toString(), addrs })
}

async function modeReserve (opts) {
  const relay = opts._[1]
  if (relay == null) throw new Error('usage: js-relay.mjs reserve <relay multiaddr/p2p/ID>')
  const node = await createNode({ listen: [`${relay}/p2p-circuit`] })
  await node.handle(PROTOCOL, (stream, connection) => {
    serveTunnel(stream, connection, null, null).catch(err => log('serveTunnel:', err))
  }, { maxInboundStreams: 256, runOnLimitedConnection: true })
  stopOnSignals(node)
  node.addEventListener('self:peer:update', () => {
    const addrs = circuitAddrs(node)
    if (addrs.length > 0) emit({ event: 'reserved', peerId: node.peerId.toString(), addrs })
  })
  await node.start()
  log(`reserve node peer=${node.peerId} relay=${relay}`)
  emit({ event: 'started', peerId: node.peerId.toString() })
}

async function modeDial (opts) {
  const relay = opts._[1]
  const target = opts._[2]
  if (relay == null || target == null) throw new Error('usage: js-relay.mjs dial <relay multiaddr/p2p/ID> <target peer id>')
  const total = intOpt(opts, 'data-bytes', 0, 0, 2 ** 32)
  const timeoutS = intOpt(opts, 'timeout', 60, 1, 3600)
  const watchdog = setTimeout(() => { fail(`dial mode timed out after ${timeoutS}s`) }, timeoutS * 1000)
  const node = await createNode({ listen: [] })
  await node.start()
  emit({ event: 'started', peerId: node.peerId.toString() })
  try {
    const identified = new Promise(resolve => {
      node.addEventListener('peer:identify', (evt) => { if (evt.detail.peerId.toString() === target) resolve() })
    })
    const addr = multiaddr(`${relay}/p2p-circuit/p2p/${target}`)
    log(`dialing ${addr}`)
    const conn = await node.dial(addr, { signal: AbortSignal.timeout(20_000) })
    log(`connected remoteAddr=${conn.remoteAddr} limits=${JSON.stringify(conn.limits ?? null, (k, v) => typeof v === 'bigint' ? v.toString() : v)}`)
    await identified
    const stream = await conn.newStream(PROTOCOL, { runOnLimitedConnection: true, signal: AbortSignal.timeout(15_000) })
    const reader = new StreamReader(stream)
    await send(stream, frame({ service_name: 'echo' }))
    const resp = await readFrame(reader)
    if (resp.accepted !== true) throw new Error(`tunnel rejected: ${resp.reason}`)
    const result = { event: 'done', ...await exchangeData(stream, reader, total) }
    clearTimeout(watchdog)
    emit(result)
  } catch (err) {
    clearTimeout(watchdog)
    await stopNode(node)
    await fail(err)
    return
  }
  await stopNode(node)
  await exit(0)
}

let mode = null
await runMain(async () => {
  const opts = parseArgs(process.argv.slice(2))
  mode = opts._[0]
  if (mode === 'relay') {
    await modeRelay(opts)
  } else if (mode === 'reserve') {
    await modeReserve(opts)
  } else if (mode === 'dial') {
    await modeDial(opts)
  } else {
    throw new Error('usage: js-relay.mjs relay [--port 0] | reserve <relay multiaddr> | dial <relay multiaddr> <target peer id> [--data-bytes N]')
  }
}, { keepRunning: () => mode === 'relay' || mode === 'reserve' })
