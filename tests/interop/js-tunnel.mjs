// js-libp2p side of punchgate's tunnel interop tests (/punchgate/tunnel/1.0.0).
//
//   node js-tunnel.mjs serve [--echo-port P] [--port 0] [--reject-reason STR]
//       A js node handling /punchgate/tunnel/1.0.0 itself. Service "echo" is
//       accepted: bytes go to a TCP connection to 127.0.0.1:P (or, without
//       --echo-port, are echoed by this script). Any other service is rejected
//       (reason: STR if given, else 'js-tunnel: unknown service "NAME"').
//   node js-tunnel.mjs dial <multiaddr-with-/p2p/> <service> [--data-bytes N] [--timeout S]
//       Dial, open /punchgate/tunnel/1.0.0, send the request, read the
//       response; if accepted send N deterministic bytes (see dataChunk()),
//       half-close, read the echo until the remote end closes.
//
// Wire format: dialer writes u32be length + JSON {"service_name":"…"}; the
// listener answers u32be length + {"accepted":true} or
// {"accepted":false,"reason":"…"}; then raw bytes both ways.
//
// stdout: JSON lines.
//   serve: {"event":"listening","peerId":…,"addrs":[…]}
//          {"event":"request","peerId":…,"service":…,"accepted":bool}
//          {"event":"tunnel-closed","peerId":…,"service":…,"bytes_in":n,"bytes_out":n,"error":…|null}
//   dial:  {"event":"started","peerId":…}
//          {"event":"done","accepted":bool,"reason":…|null,"bytes_sent":n,"bytes_received":n,
//           "sha256_sent":hex,"sha256_received":hex}                      (exit 0)
//          {"event":"error","message":…}                                   (exit 1)
// stderr: diagnostics.
//
// Deterministic data: byte stream = concat over j = 0,1,2,… of
// sha256("punchgate-tunnel-" + j) (32 bytes each), cut to N bytes.

import './polyfill.mjs'

import { identify } from '@libp2p/identify'
import { multiaddr } from '@multiformats/multiaddr'
import {
  createQuicNode, emit, exit, fail, intOpt, log, parseArgs, runMain, stopNode, stopOnSignals
} from './js-common.mjs'
import { PROTOCOL, requestTunnel, serveTunnel } from './js-tunnel-proto.mjs'

// ---------------------------------------------------------------- node

async function createNode (listen) {
  return createQuicNode({ listen, services: { identify: identify() } })
}

async function modeServe (opts) {
  const port = intOpt(opts, 'port', 0, 0, 65535)
  const echoPort = opts['echo-port'] == null ? null : intOpt(opts, 'echo-port', 0, 1, 65535)
  const node = await createNode([`/ip4/127.0.0.1/udp/${port}/quic-v1`])
  await node.handle(PROTOCOL, (stream, connection) => {
    serveTunnel(stream, connection, echoPort, opts['reject-reason'] ?? null).catch(err => log('serveTunnel:', err))
  }, { maxInboundStreams: 256 })

  stopOnSignals(node)

  await node.start()
  const addrs = node.getMultiaddrs().map(a => a.toString())
  log(`listening peer=${node.peerId} addrs=${addrs.join(',')}`)
  emit({ event: 'listening', peerId: node.peerId.toString(), addrs })
}

// ---------------------------------------------------------------- dial

async function modeDial (opts) {
  const target = opts._[1]
  const service = opts._[2]
  if (target == null || service == null) throw new Error('usage: js-tunnel.mjs dial <multiaddr/p2p/ID> <service> [--data-bytes N]')
  const total = intOpt(opts, 'data-bytes', 0, 0, 2 ** 40)
  const timeoutS = intOpt(opts, 'timeout', 60, 1, 3600)
  const watchdog = setTimeout(() => { fail(`dial mode timed out after ${timeoutS}s`) }, timeoutS * 1000)

  const node = await createNode([])
  emit({ event: 'started', peerId: node.peerId.toString() })
  try {
    log(`dialing ${target}`)
    const stream = await node.dialProtocol(multiaddr(target), PROTOCOL, { signal: AbortSignal.timeout(15_000) })
    const result = await requestTunnel(stream, service, total)
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

// ---------------------------------------------------------------- main

let mode = null
await runMain(async () => {
  const opts = parseArgs(process.argv.slice(2))
  mode = opts._[0]
  if (mode === 'serve') {
    await modeServe(opts)
  } else if (mode === 'dial') {
    await modeDial(opts)
  } else {
    throw new Error('usage: js-tunnel.mjs serve [--echo-port P] [--port 0] | dial <multiaddr/p2p/ID> <service> [--data-bytes N] [--timeout S]')
  }
}, { keepRunning: () => mode === 'serve' })
