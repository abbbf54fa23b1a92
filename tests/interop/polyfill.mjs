// Polyfills for running js-libp2p 3.x on Node 20.
// Must be imported FIRST by every script here, before anything from libp2p:
//   import './polyfill.mjs'
// (ES module imports are evaluated in order, so this module's body runs
// before libp2p's modules are evaluated.)

if (typeof Promise.withResolvers !== 'function') {
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    enumerable: false,
    value: function withResolvers () {
      let resolve
      let reject
      const promise = new this((res, rej) => {
        resolve = res
        reject = rej
      })
      return { promise, resolve, reject }
    }
  })
}

// The native QUIC binding is deliberately pinned to
// @chainsafe/libp2p-quic-linux-x64-gnu 2.1.4 under the 2.1.1 JS wrapper; the
// wrapper's napi loader throws on that version skew only when this variable
// is set, so make sure it isn't (createQuicNode() in js-common.mjs passes the
// extra config field the newer binding requires).
delete process.env.NAPI_RS_ENFORCE_VERSION_CHECK
