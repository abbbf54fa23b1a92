// The /punchgate/tunnel/1.0.0 protocol for the js-libp2p interop scripts: stream
// reading helpers, the framed JSON request/response, the deterministic test data,
// the serving side and the requesting side (js-tunnel.mjs and js-relay.mjs share it).

import { createHash } from 'node:crypto'
import net from 'node:net'
import { emit, errorMessage, log } from './js-common.mjs'

export const PROTOCOL = '/punchgate/tunnel/1.0.0'
export const MAX_FRAME = 64 * 1024

// ---------------------------------------------------------------- stream helpers

function toBytes (data) {
  // Uint8Array or Uint8ArrayList (whose subarray() returns one Uint8Array)
  return data instanceof Uint8Array ? data : data.subarray()
}

// Buffered reader over a libp2p 3.x stream. Listeners are attached at once:
// 'message' events dispatched while nobody listens are lost.
export class StreamReader {
  constructor (stream) {
    this.chunks = []
    this.ended = false
    this.error = null
    this.waiter = null
    stream.addEventListener('message', (evt) => { this.chunks.push(toBytes(evt.data)); this.wake() })
    stream.addEventListener('remoteCloseWrite', () => { this.ended = true; this.wake() })
    stream.addEventListener('close', (evt) => {
      this.ended = true
      if (evt.error != null && this.error == null) this.error = evt.error
      this.wake()
    })
  }

  wake () {
    const w = this.waiter
    this.waiter = null
    if (w != null) w()
  }

  // next chunk, or null at the end of the stream (throws if it was aborted)
  async read () {
    while (true) {
      if (this.chunks.length > 0) return this.chunks.shift()
      if (this.error != null) throw this.error
      if (this.ended) return null
      await new Promise(resolve => { this.waiter = resolve })
    }
  }

  async readExact (n) {
    const out = new Uint8Array(n)
    let have = 0
    while (have < n) {
      const c = await this.read()
      if (c == null) throw new Error(`stream ended after ${have} of ${n} bytes`)
      const take = Math.min(c.length, n - have)
      out.set(c.subarray(0, take), have)
      have += take
      if (take < c.length) this.chunks.unshift(c.subarray(take))
    }
    return out
  }
}

export async function send (stream, data) {
  if (!stream.send(data)) await stream.onDrain()
}

export function frame (obj) {
  const body = new TextEncoder().encode(JSON.stringify(obj))
  const out = new Uint8Array(4 + body.length)
  new DataView(out.buffer).setUint32(0, body.length, false)
  out.set(body, 4)
  return out
}

export async function readFrame (reader) {
  const hdr = await reader.readExact(4)
  const len = new DataView(hdr.buffer, hdr.byteOffset, 4).getUint32(0, false)
  if (len > MAX_FRAME) throw new Error(`frame length ${len} exceeds ${MAX_FRAME}`)
  const body = await reader.readExact(len)
  return JSON.parse(new TextDecoder().decode(body))
}

export function dataChunk (j) {
  return createHash('sha256').update(`punchgate-tunnel-${j}`).digest()
}

// ---------------------------------------------------------------- serve

// Serves one inbound tunnel stream. Service "echo" is accepted: bytes go to a
// TCP connection to 127.0.0.1:echoPort (or, with echoPort null, are echoed
// here); any other service is rejected (rejectReason, or 'js-tunnel: unknown
// service "NAME"'). Emits "request" and "tunnel-closed" events with `extra`
// (e.g. {connection: "relayed"}) merged in.
export async function serveTunnel (stream, connection, echoPort, rejectReason, extra = {}) {
  const peer = connection.remotePeer.toString()
  const reader = new StreamReader(stream)
  let service = null
  let bytesIn = 0
  let bytesOut = 0
  try {
    const req = await readFrame(reader)
    service = req?.service_name
    if (service !== 'echo') {
      const reason = rejectReason ?? `js-tunnel: unknown service ${JSON.stringify(service)}`
      emit({ event: 'request', peerId: peer, service, accepted: false, ...extra })
      await send(stream, frame({ accepted: false, reason }))
      await stream.close()
      return
    }
    let sock = null
    if (echoPort != null) {
      sock = net.connect({ host: '127.0.0.1', port: echoPort })
      try {
        await new Promise((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject) })
      } catch (err) {
        const reason = `js-tunnel: connect to 127.0.0.1:${echoPort} failed: ${err.message}`
        emit({ event: 'request', peerId: peer, service, accepted: false, ...extra })
        await send(stream, frame({ accepted: false, reason }))
        await stream.close()
        return
      }
    }
    emit({ event: 'request', peerId: peer, service, accepted: true, ...extra })
    await send(stream, frame({ accepted: true }))

    if (sock == null) {
      // echo ourselves: everything read goes straight back; FIN after the remote's FIN
      while (true) {
        const c = await reader.read()
        if (c == null) break
        bytesIn += c.length
        await send(stream, c)
        bytesOut += c.length
      }
      await stream.close()
    } else {
      // stream -> tcp
      const toTcp = (async () => {
        while (true) {
          const c = await reader.read()
          if (c == null) break
          bytesIn += c.length
          if (!sock.write(c)) await new Promise(resolve => sock.once('drain', resolve))
        }
        sock.end()
      })()
      // tcp -> stream
      const fromTcp = (async () => {
        for await (const c of sock) {
          bytesOut += c.length
          await send(stream, c)
        }
        await stream.close()
      })()
      try {
        await Promise.all([toTcp, fromTcp])
      } finally {
        sock.destroy()
      }
    }
    emit({ event: 'tunnel-closed', peerId: peer, service, bytes_in: bytesIn, bytes_out: bytesOut, error: null, ...extra })
  } catch (err) {
    log('tunnel error:', err)
    emit({ event: 'tunnel-closed', peerId: peer, service, bytes_in: bytesIn, bytes_out: bytesOut, error: errorMessage(err), ...extra })
    stream.abort(err instanceof Error ? err : new Error(String(err)))
  }
}

// Sends `total` bytes of dataChunk() data (~32 KiB per send), half-closes, and reads
// everything the far end returns until it closes; returns counts and sha256 hex both ways.
export async function exchangeData (stream, reader, total) {
  const sentHash = createHash('sha256')
  const recvHash = createHash('sha256')
  const out = { bytes_sent: 0, bytes_received: 0 }
  const sender = (async () => {
    let j = 0
    let left = total
    const batch = []
    while (left > 0) {
      let n = 0
      batch.length = 0
      while (n < 32 * 1024 && left > 0) {
        let c = dataChunk(j++)
        if (c.length > left) c = c.subarray(0, left)
        batch.push(c)
        n += c.length
        left -= c.length
      }
      const buf = Buffer.concat(batch)
      sentHash.update(buf)
      await send(stream, buf)
      out.bytes_sent += buf.length
    }
    await stream.close() // half-close: FIN after the data
  })()
  const receiver = (async () => {
    while (true) {
      const c = await reader.read()
      if (c == null) break
      recvHash.update(c)
      out.bytes_received += c.length
    }
  })()
  await Promise.all([sender, receiver])
  out.sha256_sent = sentHash.digest('hex')
  out.sha256_received = recvHash.digest('hex')
  return out
}

// ---------------------------------------------------------------- request

// The requesting side on an open PROTOCOL stream: asks for `service`; if
// accepted, exchangeData() with `total` bytes; if rejected, reads to the end
// (the listener closes). Returns
//   {"event":"done","accepted":bool,"reason":…|null,"bytes_sent":n,"bytes_received":n,
//    "sha256_sent":hex|null,"sha256_received":hex|null}
export async function requestTunnel (stream, service, total) {
  const reader = new StreamReader(stream)
  await send(stream, frame({ service_name: service }))
  const resp = await readFrame(reader)
  log('response:', resp)
  const result = {
    event: 'done',
    accepted: resp.accepted === true,
    reason: resp.reason ?? null,
    bytes_sent: 0,
    bytes_received: 0,
    sha256_sent: null,
    sha256_received: null
  }
  if (result.accepted) {
    Object.assign(result, await exchangeData(stream, reader, total))
  } else {
    // the listener closes after a rejection: expect the end, no data
    let extra = 0
    while (true) {
      const c = await reader.read()
      if (c == null) break
      extra += c.length
    }
    result.bytes_received = extra
    await stream.close().catch(() => {})
  }
  return result
}
