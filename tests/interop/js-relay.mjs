// js-libp2p side of punchgate's circuit relay v2 interop tests.
//
//   node js-relay.mjs relay [--port 0] [--host 127.0.0.1] [--max-reservations 1024]
//                           [--limit-data BYTES] [--limit-duration MS]
//       A node serving circuit relay v2 hop (/libp2p/circuit/relay/0.2.0/hop)
//       over QUIC, by default WITHOUT limits on relayed connections
//       (applyDefaultLimit: false: the reservation carries no Limit, so neither
//       end marks the relayed connection "limited"). --limit-data /
//       --limit-duration apply a Limit (the other one then gets js's default,
//       128 KiB / 2 min). Beware: js puts the duration on the wire unchanged,
//       i.e. in ms where the spec says seconds.
//   node js-relay.mjs reserve <relay-multiaddr-with-/p2p/> [--echo-port P] [--port P]
//                             [--reject-reason STR] [--timeout 30]
//       Reserves a slot on the relay (listens on <relay>/p2p-circuit) and
//       serves /punchgate/tunnel/1.0.0 like `js-tunnel.mjs serve` (service
//       "echo": to 127.0.0.1:P, or echoed here without --echo-port), also on
//       limited relayed connections. No direct listen address unless --port is
//       given, so a peer can only reach it through the relay.
//   node js-relay.mjs dial <relay-ma>/p2p-circuit/p2p/<ID> [--service NAME] [--data-bytes N] [--timeout 60]
//       Dials through the relay, waits for identify of <ID> over the relayed
//       connection and, with --service, runs one tunnel request over it like
//       `js-tunnel.mjs dial` (N deterministic bytes, see js-tunnel-proto.mjs).
//
// Common options: --key FILE (identity, created if missing), --agent-version STR.
//
// stdout: JSON lines. Every mode, for every connection / completed identify:
//   {"event":"connection","peerId":…,"direction":"inbound|outbound","remoteAddr":…,
//    "connection":"relayed|direct","limited":bool}
//   {"event":"identify","peerId":…,"agentVersion":…,"protocolVersion":…,"protocols":[…],
//    "listenAddrs":[…],"observedAddr":…|null,"connection":"relayed|direct","limited":bool,
//    "remoteAddr":…}
// relay:   {"event":"listening","peerId":…,"addrs":[…]}
//          {"event":"reservation","peerId":<reserving peer>,"addr":…,"expiry":<unix s>}  (new reservation)
//          {"event":"reservation-removed","peerId":…}                                  (expired / cleared)
// reserve: {"event":"reserved","peerId":…,"relay":<relay id>,"addrs":[<circuit addrs>],"allAddrs":[…]}
//          {"event":"unreserved","peerId":…,"relay":…}         (circuit addresses gone, e.g. relay lost)
//          {"event":"request",…,"connection":…} / {"event":"tunnel-closed",…,"connection":…}
//                                                              (as js-tunnel.mjs serve, plus the kind)
// dial:    {"event":"started","peerId":…}
//          {"event":"connected","peerId":…,"remoteAddr":…,"connection":"relayed","limited":bool}
//          the identify event of the target (over the relayed connection)
//          {"event":"done","ok":true,"peerId":…,"connection":"relayed","limited":bool
//           [,"service":…,"accepted":…,"reason":…,"bytes_sent":n,"bytes_received":n,
//            "sha256_sent":…,"sha256_received":…,"connection_open":bool]}             (exit 0)
// any:     {"event":"error","message":…}                                             (exit 1)
//          {"event":"stopped"}                                  (relay/reserve, on SIGTERM/SIGINT)
// stderr: diagnostics (DEBUG='libp2p:circuit-relay*' for the relay code's own logs).
//
// js-libp2p notes: a relayed connection whose relay sent a Limit (ours does by
// default: duration + data) is "limited": libp2p refuses streams on it unless
// the handler was registered / the stream opened with runOnLimitedConnection:
// true (identify, ping and the relay protocols do that themselves). The relay
// server's 'relay:reservation' event is declared but never dispatched in
// @libp2p/circuit-relay-v2 4.2.13, hence the polling in relay mode.

import './polyfill.mjs'

import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayServer, circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { multiaddr } from '@multiformats/multiaddr'
import {
  connectionInfo, connectionKind, createQuicNode, emit, exit, fail, identifyToJson, intOpt, loadKey, log, p2pPeerId,
  parseArgs, runMain, stopNode, stopOnSignals
} from './js-common.mjs'
import { PROTOCOL, requestTunnel, serveTunnel } from './js-tunnel-proto.mjs'

const POLL_MS = 100

let reservedOnce = false // reserve mode: from then on a stray error only gets logged

// ---------------------------------------------------------------- node

// QUIC plus, with `circuitRelay` (circuitRelayTransport() options), dialing and
// listening on /p2p-circuit addresses; a relayed connection is upgraded like a
// raw one, hence noise + yamux (QUIC brings its own security and muxing).
// The relay server alone needs neither. start: false leaves node.start() to the
// caller.
async function createNode (opts, { listen, relayServer = null, circuitRelay = null, start = true }) {
  const services = { identify: identify(), ping: ping() }
  if (relayServer != null) services.relay = circuitRelayServer(relayServer)
  const node = await createQuicNode({
    privateKey: await loadKey(opts.key),
    listen,
    userAgent: opts['agent-version'],
    services,
    extraTransports: circuitRelay != null ? [circuitRelayTransport(circuitRelay)] : [],
    extra: {
      start,
      ...(circuitRelay != null ? { connectionEncrypters: [noise()], streamMuxers: [yamux()] } : {})
    }
  })

  node.addEventListener('connection:open', (evt) => {
    const c = evt.detail
    log(`connection open peer=${c.remotePeer} direction=${c.direction} remoteAddr=${c.remoteAddr} limited=${c.limits != null}`)
    emit({ event: 'connection', peerId: c.remotePeer.toString(), direction: c.direction, remoteAddr: c.remoteAddr.toString(), ...connectionInfo(c) })
  })
  node.addEventListener('connection:close', (evt) => {
    const c = evt.detail
    log(`connection closed peer=${c.remotePeer} direction=${c.direction} remoteAddr=${c.remoteAddr}`)
  })
  node.addEventListener('peer:identify', (evt) => {
    const j = identifyToJson(evt.detail)
    log(`identify peer=${j.peerId} agent=${JSON.stringify(j.agentVersion)} connection=${j.connection}`)
    emit(j)
  })
  return node
}

function circuitAddrs (node) {
  return node.getMultiaddrs().map(a => a.toString()).filter(a => a.includes('/p2p-circuit'))
}

// ---------------------------------------------------------------- relay

async function modeRelay (opts) {
  const port = intOpt(opts, 'port', 0, 0, 65535)
  const host = opts.host ?? '127.0.0.1'
  const maxReservations = intOpt(opts, 'max-reservations', 1024, 1, 1_000_000)
  const limitData = opts['limit-data'] == null ? undefined : BigInt(intOpt(opts, 'limit-data', 0, 1, Number.MAX_SAFE_INTEGER))
  const limitDuration = opts['limit-duration'] == null ? undefined : intOpt(opts, 'limit-duration', 0, 1, 2 ** 31 - 1)
  const node = await createNode(opts, {
    listen: [`/ip4/${host}/udp/${port}/quic-v1`],
    relayServer: {
      reservations: {
        maxReservations,
        // without limit options: no Limit in reservations / CONNECT answers,
        // relayed connections are not "limited" and never cut by the relay
        applyDefaultLimit: limitData != null || limitDuration != null,
        defaultDataLimit: limitData,
        defaultDurationLimit: limitDuration
      }
    }
  })
  stopOnSignals(node)
  await node.start()
  const addrs = node.getMultiaddrs().map(a => a.toString())
  log(`listening peer=${node.peerId} addrs=${addrs.join(',')}`)
  emit({ event: 'listening', peerId: node.peerId.toString(), addrs })

  // reservations: see the header on why this polls
  const seen = new Set()
  setInterval(() => {
    const now = new Set()
    for (const [peerId, r] of node.services.relay.reservations.entries()) {
      const id = peerId.toString()
      now.add(id)
      if (!seen.has(id)) {
        seen.add(id)
        log(`reservation peer=${id} addr=${r.addr} expiry=${r.expiry.toISOString()}`)
        emit({ event: 'reservation', peerId: id, addr: r.addr?.toString() ?? null, expiry: Math.round(r.expiry.getTime() / 1000) })
      }
    }
    for (const id of [...seen]) {
      if (!now.has(id)) {
        seen.delete(id)
        log(`reservation removed peer=${id}`)
        emit({ event: 'reservation-removed', peerId: id })
      }
    }
  }, POLL_MS).unref()
  // runs until killed (the QUIC listener keeps the process alive)
}

// ---------------------------------------------------------------- reserve

async function modeReserve (opts) {
  const relay = opts._[1]
  if (relay == null) throw new Error('usage: js-relay.mjs reserve <relay-multiaddr-with-/p2p/> [--echo-port P] [--port P]')
  const relayMa = multiaddr(relay)
  const relayId = p2pPeerId(relayMa)
  if (relayId == null) throw new Error(`relay multiaddr has no /p2p/ component: ${relay}`)
  if (relay.includes('/p2p-circuit')) throw new Error(`give the relay's own address, not a circuit address: ${relay}`)
  const echoPort = opts['echo-port'] == null ? null : intOpt(opts, 'echo-port', 0, 1, 65535)
  const timeoutS = intOpt(opts, 'timeout', 30, 1, 3600)
  const listen = [relayMa.encapsulate('/p2p-circuit').toString()]
  if (opts.port != null) listen.push(`/ip4/127.0.0.1/udp/${intOpt(opts, 'port', 0, 0, 65535)}/quic-v1`)

  const watchdog = setTimeout(() => { fail(`no reservation on ${relay} within ${timeoutS}s`) }, timeoutS * 1000)
  // Listening on <relay>/p2p-circuit makes the circuit relay transport dial the
  // relay and reserve a slot while the node starts.
  // start: false: the tunnel handler is registered before the node reserves and
  // identifies with the relay (the first identify then lists it)
  const node = await createNode(opts, { listen, circuitRelay: { reservationCompletionTimeout: 10_000 }, start: false })
  await node.handle(PROTOCOL, (stream, connection) => {
    serveTunnel(stream, connection, echoPort, opts['reject-reason'] ?? null, { connection: connectionKind(connection) })
      .catch(err => log('serveTunnel:', err))
  }, { maxInboundStreams: 256, runOnLimitedConnection: true })
  stopOnSignals(node)
  await node.start() // reserves: fails if the relay cannot be reached or refuses

  // the listener announces the circuit addresses just after the reservation
  while (circuitAddrs(node).length === 0) await new Promise(resolve => setTimeout(resolve, POLL_MS))
  clearTimeout(watchdog)
  reservedOnce = true
  let reserved = circuitAddrs(node)
  log(`reserved on ${relayId} addrs=${reserved.join(',')}`)
  emit({ event: 'reserved', peerId: node.peerId.toString(), relay: relayId, addrs: reserved, allAddrs: node.getMultiaddrs().map(a => a.toString()) })

  node.addEventListener('self:peer:update', () => {
    const now = circuitAddrs(node)
    if (now.length === 0 && reserved.length > 0) {
      log(`reservation on ${relayId} gone`)
      emit({ event: 'unreserved', peerId: node.peerId.toString(), relay: relayId })
    } else if (now.length > 0 && reserved.length === 0) {
      emit({ event: 'reserved', peerId: node.peerId.toString(), relay: relayId, addrs: now, allAddrs: node.getMultiaddrs().map(a => a.toString()) })
    }
    reserved = now
  })
  // runs until killed
}

// ---------------------------------------------------------------- dial

async function modeDial (opts) {
  const target = opts._[1]
  if (target == null) throw new Error('usage: js-relay.mjs dial <relay-ma>/p2p-circuit/p2p/<ID> [--service NAME] [--data-bytes N] [--timeout S]')
  const ma = multiaddr(target)
  const expected = p2pPeerId(ma)
  if (!target.includes('/p2p-circuit/') || expected == null) throw new Error(`not a circuit multiaddr ending in /p2p/<ID>: ${target}`)
  const service = opts.service ?? null
  const total = intOpt(opts, 'data-bytes', 0, 0, 2 ** 40)
  const timeoutS = intOpt(opts, 'timeout', 60, 1, 3600)
  const watchdog = setTimeout(() => { fail(`dial mode timed out after ${timeoutS}s`) }, timeoutS * 1000)

  const node = await createNode(opts, { listen: [], circuitRelay: {} })
  emit({ event: 'started', peerId: node.peerId.toString() })

  // registered before dialing: identify runs as soon as the connection opens
  let identifyWaiter = null
  let identified = null
  node.addEventListener('peer:identify', (evt) => {
    const d = evt.detail
    if (d.peerId.toString() !== expected || connectionKind(d.connection) !== 'relayed') return
    identified ??= d
    if (identifyWaiter != null) identifyWaiter()
  })

  try {
    log(`dialing ${target}`)
    const conn = await node.dial(ma, { signal: AbortSignal.timeout(20_000) })
    const remote = conn.remotePeer.toString()
    const info = connectionInfo(conn)
    log(`connected peer=${remote} remoteAddr=${conn.remoteAddr} limited=${info.limited}`)
    if (remote !== expected) throw new Error(`peer id mismatch: expected ${expected}, got ${remote}`)
    if (info.connection !== 'relayed') throw new Error(`connection to ${remote} is not relayed: ${conn.remoteAddr}`)
    emit({ event: 'connected', peerId: remote, remoteAddr: conn.remoteAddr.toString(), ...info })

    if (identified == null) {
      log('waiting for identify of remote over the relayed connection')
      await new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no identify from ${expected} over the relayed connection within 15 s`)), 15_000)
        identifyWaiter = () => { clearTimeout(t); resolve() }
      })
    }
    // (the identify event itself was printed by createNode's listener)

    const done = { event: 'done', ok: true, peerId: remote, ...info }
    if (service != null) {
      const stream = await conn.newStream(PROTOCOL, { runOnLimitedConnection: true, signal: AbortSignal.timeout(15_000) })
      const result = await requestTunnel(stream, service, total)
      Object.assign(done, { service }, result, { event: 'done', ok: true })
      // a relay that cuts the circuit (a limit) ends the tunnel like a clean
      // close: this and the byte counts / hashes tell the two apart
      done.connection_open = conn.status === 'open'
    }
    clearTimeout(watchdog)
    emit(done)
  } catch (err) {
    clearTimeout(watchdog)
    await stopNode(node)
    await fail(err)
    return
  }
  await stopNode(node)
  await exit(0)
}

// ---------------------------------------------------------------- main

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
    throw new Error('usage: js-relay.mjs relay [--port P] | reserve <relay-ma/p2p/ID> [--echo-port P] [--port P] | ' +
      'dial <relay-ma>/p2p-circuit/p2p/<ID> [--service NAME] [--data-bytes N] [--timeout S]  [--key FILE] [--agent-version STR]')
  }
}, { keepRunning: () => mode === 'relay' || (mode === 'reserve' && reservedOnce) })
