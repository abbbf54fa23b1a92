// Shared plumbing of the js-libp2p scripts used by punchgate's interop tests
// (js-peer.mjs, js-tunnel.mjs, js-kad.mjs, js-relay.mjs, js-dcutr.mjs): JSON-line
// output, logging and exiting, the simple `--name value` argument parser,
// connection / identify descriptions, identity keys, and the QUIC-only libp2p
// node with its stop/signal handling.
//
// A script imports './polyfill.mjs' first and then this module.
//
// stdout: one JSON object per line (emit()); stderr: human diagnostics, each
// line tagged with the script's name (log()).

import './polyfill.mjs'

import { readFile, writeFile } from 'node:fs/promises'
import { basename } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { quic } from '@chainsafe/libp2p-quic'
import { createLibp2p } from 'libp2p'

const STOP_TIMEOUT_MS = 5_000
const LOG_TAG = process.argv[1] != null ? basename(process.argv[1], '.mjs') : 'js'

// ---------------------------------------------------------------- output

export function emit (obj) {
  // One JSON object per line. Writes to a pipe are synchronous on Linux, and
  // exit() below additionally waits for stdout to drain before exiting.
  process.stdout.write(JSON.stringify(obj) + '\n')
}

export function log (...args) {
  const msg = args.map(a => (a instanceof Error ? (a.stack ?? a.message) : typeof a === 'string' ? a : JSON.stringify(a))).join(' ')
  process.stderr.write(`[${LOG_TAG} ${new Date().toISOString()}] ${msg}\n`)
}

let exiting = false
export async function exit (code) {
  if (exiting) return
  exiting = true
  // make sure everything queued on stdout/stderr is flushed before exiting
  await new Promise(resolve => process.stdout.write('', () => resolve()))
  await new Promise(resolve => process.stderr.write('', () => resolve()))
  process.exit(code)
}

export function errorMessage (err) {
  if (err == null) return 'unknown error'
  const parts = [err.name && err.name !== 'Error' ? `${err.name}: ${err.message}` : String(err.message ?? err)]
  // AggregateError (e.g. from dialing several addresses)
  if (Array.isArray(err.errors)) for (const e of err.errors) parts.push(errorMessage(e))
  if (err.cause != null && err.cause !== err) parts.push(`cause: ${errorMessage(err.cause)}`)
  return parts.join('; ')
}

// {"event":"error","message":…} on stdout, then exit 1
export async function fail (err) {
  const message = typeof err === 'string' ? err : errorMessage(err)
  if (typeof err !== 'string') log('error:', err)
  emit({ event: 'error', message })
  await exit(1)
}

// Runs main(); an error it throws, and any later unhandled rejection or uncaught
// exception, fails the script (exit 1) unless keepRunning() says it is a
// long-running node by then, which only logs them.
export async function runMain (main, { keepRunning = () => false } = {}) {
  process.on('unhandledRejection', (err) => {
    log('unhandled rejection:', err)
    if (!keepRunning()) fail(err)
  })
  process.on('uncaughtException', (err) => {
    log('uncaught exception:', err)
    if (!keepRunning()) fail(err)
  })
  try {
    await main()
  } catch (err) {
    await fail(err)
  }
}

// ---------------------------------------------------------------- args

// `--name value` / `--name=value` options into opts[name], the rest into opts._
export function parseArgs (argv) {
  const opts = { _: [] }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a.startsWith('--')) {
      const eq = a.indexOf('=')
      if (eq !== -1) {
        opts[a.slice(2, eq)] = a.slice(eq + 1)
      } else {
        if (i + 1 >= argv.length) throw new Error(`missing value for ${a}`)
        opts[a.slice(2)] = argv[++i]
      }
    } else {
      opts._.push(a)
    }
  }
  return opts
}

export function intOpt (opts, key, def, min, max) {
  if (opts[key] == null) return def
  const v = Number(opts[key])
  if (!Number.isInteger(v) || v < min || v > max) throw new Error(`invalid --${key}: ${opts[key]}`)
  return v
}

// the peer id string of a multiaddr's last /p2p/ component, or undefined
export function p2pPeerId (ma) {
  return ma.getComponents().findLast(c => c.name === 'p2p')?.value
}

// ---------------------------------------------------------------- connections

// "relayed" (over a /p2p-circuit relay stream) or "direct"
export function connectionKind (connection) {
  return connection?.remoteAddr?.getComponents().some(c => c.name === 'p2p-circuit') === true ? 'relayed' : 'direct'
}

export function connectionInfo (c) {
  return { connection: connectionKind(c), limited: c.limits != null }
}

export function identifyToJson (d) {
  return {
    event: 'identify',
    peerId: d.peerId.toString(),
    protocolVersion: d.protocolVersion ?? null,
    agentVersion: d.agentVersion ?? null,
    protocols: [...(d.protocols ?? [])],
    listenAddrs: (d.listenAddrs ?? []).map(a => a.toString()),
    observedAddr: d.observedAddr != null ? d.observedAddr.toString() : null,
    ...connectionInfo(d.connection),
    remoteAddr: d.connection?.remoteAddr?.toString() ?? null
  }
}

// ---------------------------------------------------------------- node

// Identity: a libp2p-protobuf-encoded private key read from `file`, created
// (Ed25519, mode 0600) if the file does not exist; without a file a fresh key.
export async function loadKey (file) {
  if (file == null) return generateKeyPair('Ed25519')
  try {
    return privateKeyFromProtobuf(new Uint8Array(await readFile(file)))
  } catch (err) {
    if (err.code !== 'ENOENT') throw new Error(`cannot load key from ${file}: ${err.message}`)
  }
  const key = await generateKeyPair('Ed25519')
  await writeFile(file, privateKeyToProtobuf(key), { mode: 0o600 })
  return key
}

// A libp2p node with QUIC as its only transport. QUIC brings its own encryption
// (TLS 1.3) and multiplexing: no connectionEncrypters / streamMuxers needed.
// `extra` adds libp2p options (e.g. the circuit relay transport with its
// connectionEncrypters and streamMuxers, which relayed connections need).
export async function createQuicNode ({ privateKey, listen, services, userAgent, extraTransports = [], extra = {} }) {
  return createLibp2p({
    ...extra,
    privateKey: privateKey ?? await generateKeyPair('Ed25519'),
    addresses: { ...extra.addresses, listen },
    transports: [quic({
      // The native binding is pinned to @chainsafe/libp2p-quic-linux-x64-gnu
      // 2.1.4, whose napi Config has a REQUIRED `shutdownTimeout` field that
      // the 2.1.1 JS wrapper's defaultOptions do not supply (without it every
      // Server/Client constructor throws "Missing field `shutdownTimeout`").
      // Assumed ms like the wrapper's other timeouts (not documented for 2.1.4).
      shutdownTimeout: 2_000
    }), ...extraTransports],
    ...(userAgent != null ? { nodeInfo: { userAgent } } : {}),
    services
  })
}

// node.stop(), but never hanging longer than STOP_TIMEOUT_MS (a failure is logged)
export async function stopNode (node) {
  let timer
  try {
    await Promise.race([
      node.stop(),
      new Promise((resolve, reject) => { timer = setTimeout(() => reject(new Error('node.stop() timed out')), STOP_TIMEOUT_MS) })
    ])
  } catch (err) {
    log('stop:', err)
  } finally {
    clearTimeout(timer)
  }
}

// On SIGTERM/SIGINT: stop the node, emit {"event":"stopped"}, exit 0.
export function stopOnSignals (node) {
  let stopping = false
  const onSignal = async (sig) => {
    if (stopping) return
    stopping = true
    log(`received ${sig}, stopping`)
    await stopNode(node)
    emit({ event: 'stopped' })
    await exit(0)
  }
  process.on('SIGTERM', () => { onSignal('SIGTERM') })
  process.on('SIGINT', () => { onSignal('SIGINT') })
}
