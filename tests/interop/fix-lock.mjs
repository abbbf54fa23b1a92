// Work around npm/cli#9846 (npm >= 11.16): `npm install` leaves optional
// dependencies that the registry does not have out of package-lock.json, and
// `npm ci` then rejects that very lock as "Missing: <name>@ from lock file".
// @chainsafe/libp2p-quic@2.1.1 lists one native package per platform as
// optionalDependencies; our registry only serves the linux-x64-gnu one.
// This adds a platform-tagged placeholder entry for each of the others, the
// same shape npm writes for a real non-matching platform package: `npm ci`
// then sees the lock as complete and skips them (wrong os/cpu/libc).
//
// Run after every `npm install` that rewrites the lock:
//   npm install && node fix-lock.mjs && rm -rf node_modules && npm ci
import { readFileSync, writeFileSync } from 'node:fs'

const LOCK = new URL('./package-lock.json', import.meta.url)
const lock = JSON.parse(readFileSync(LOCK, 'utf8'))
const pkgs = lock.packages

const PLATFORMS = {
  'darwin-arm64': { os: ['darwin'], cpu: ['arm64'] },
  'darwin-x64': { os: ['darwin'], cpu: ['x64'] },
  'linux-arm64-gnu': { os: ['linux'], cpu: ['arm64'], libc: ['glibc'] },
  'linux-arm64-musl': { os: ['linux'], cpu: ['arm64'], libc: ['musl'] },
  'linux-x64-gnu': { os: ['linux'], cpu: ['x64'], libc: ['glibc'] },
  'linux-x64-musl': { os: ['linux'], cpu: ['x64'], libc: ['musl'] },
  'win32-x64-msvc': { os: ['win32'], cpu: ['x64'] }
}

let added = 0
for (const [path, entry] of Object.entries(pkgs)) {
  for (const [dep, spec] of Object.entries(entry.optionalDependencies ?? {})) {
    const m = /^@chainsafe\/libp2p-quic-(.+)$/.exec(dep)
    if (m == null || PLATFORMS[m[1]] == null) continue
    // resolve like node: nested first, then hoisted
    const nested = `${path === '' ? '' : path + '/'}node_modules/${dep}`
    const hoisted = `node_modules/${dep}`
    if (pkgs[nested] != null || pkgs[hoisted] != null) continue
    const { os, cpu, libc } = PLATFORMS[m[1]]
    // field order as npm itself writes it, so a later `npm install` is a no-op
    pkgs[hoisted] = { version: spec, cpu, ...(libc ? { libc } : {}), license: 'MIT', optional: true, os }
    added++
  }
}

// keep npm's key order (sorted by path) so diffs stay small
lock.packages = Object.fromEntries(Object.entries(pkgs).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a.localeCompare(b, 'en'))))
writeFileSync(LOCK, JSON.stringify(lock, null, 2) + '\n')
console.log(`fix-lock: added ${added} placeholder entr${added === 1 ? 'y' : 'ies'}`)
