'use strict'
// CommonJS entry. The native addon comes from, in this order:
//  1. ./vmcontainer.node beside this file: a build from source (`npm run
//     build` here, which needs Rust);
//  2. the platform package @vmcontainer/<platform> (linux-x64-gnu,
//     linux-arm64-gnu, darwin-arm64, ...), which npm installs from this
//     package's optionalDependencies on the machine it fits (its package.json
//     has `os`, `cpu` and `libc`). Its version must be this package's.
// Nothing is compiled at install time. See README.md ("Install").
const { existsSync, readFileSync } = require('node:fs')
const { join } = require('node:path')
const { version } = require('./package.json')

const SCOPE = '@vmcontainer'

/** True on a musl libc (Alpine), false on glibc. */
function isMusl() {
  try {
    return readFileSync('/usr/bin/ldd', 'utf8').includes('musl')
  } catch {
    // No ldd (a minimal image): ask Node which libc it runs on.
    const header = process.report && process.report.getReport().header
    return !(header && header.glibcVersionRuntime)
  }
}

/** The platform package's suffix, as napi-rs names them. */
function platformName() {
  const { platform, arch } = process
  if (platform === 'linux') return `linux-${arch}-${isMusl() ? 'musl' : 'gnu'}`
  if (platform === 'win32') return `win32-${arch}-msvc`
  return `${platform}-${arch}`
}

function load() {
  const local = join(__dirname, 'vmcontainer.node')
  if (existsSync(local)) return require(local)

  const pkg = `${SCOPE}/${platformName()}`
  let found
  try {
    found = require(`${pkg}/package.json`).version
  } catch (e) {
    if (e && e.code === 'MODULE_NOT_FOUND') {
      throw new Error(
        `vmcontainer: no native addon for ${process.platform}-${process.arch}: ${pkg} is not ` +
          'installed. npm installs it with vmcontainer as an optional dependency unless ' +
          'optional dependencies are omitted (--omit=optional, --no-optional); if no ' +
          `${pkg} is published, build the addon from source (needs Rust): ` +
          'see "Install" in the vmcontainer README',
        { cause: e },
      )
    }
    throw e
  }
  if (found !== version) {
    throw new Error(
      `vmcontainer ${version} needs ${pkg}@${version}, but ${pkg}@${found} is installed; ` +
        'reinstall vmcontainer so that npm picks the matching addon',
    )
  }
  return require(pkg)
}

// `Manager.list` gets the list from the native module packed: the string
// fields back to back in one string, the numbers (and where each string
// ends) in one Float64Array (see PackedContainers in src/types.rs, which
// writes them in this order). Unpacking builds each object with one
// literal, so all share one shape and nothing is parsed; the objects are
// the same as those `get` returns (absent optional fields left out).
function unpackContainers({ text, nums }) {
  let i = 0
  let at = 0
  const str = () => {
    const end = nums[i++]
    const s = text.slice(at, end)
    at = end
    return s
  }
  const optStr = () => (nums[i] < 0 ? (i++, undefined) : str())
  const num = () => nums[i++]
  const n = num()
  const all = new Array(n)
  for (let k = 0; k < n; k++) {
    const id = str()
    const name = str()
    const image = str()
    const status = str()
    const statusText = str()
    const pid = num()
    const startedAt = new Date(num())
    const ports = {}
    for (let p = num(); p > 0; p--) {
      const host = num()
      ports[host] = num()
    }
    const memory = num()
    const cpus = num()
    const sshPort = num()
    const sshKey = optStr()
    const volumes = {}
    for (let v = num(); v > 0; v--) {
      const host = str()
      volumes[host] = str()
    }
    const hypervisor = optStr()
    const accel = optStr()
    const format = optStr()
    const bindAddress = optStr()
    const bindAddresses = {}
    for (let b = num(); b > 0; b--) {
      const host = num()
      bindAddresses[host] = str()
    }
    const exitCode = num()
    const exitSignal = num()
    const exitReason = optStr()
    const stoppedAt = num()
    const snapshot = optStr()
    const c = { id, name, image, status, statusText, pid, startedAt, ports, memory, cpus, sshPort }
    if (sshKey !== undefined) c.sshKey = sshKey
    c.volumes = volumes
    if (hypervisor !== undefined) c.hypervisor = hypervisor
    if (accel !== undefined) c.accel = accel
    if (format !== undefined) c.format = format
    if (bindAddress !== undefined) c.bindAddress = bindAddress
    c.bindAddresses = bindAddresses
    if (!Number.isNaN(exitCode)) c.exitCode = exitCode
    if (!Number.isNaN(exitSignal)) c.exitSignal = exitSignal
    if (exitReason !== undefined) c.exitReason = exitReason
    if (!Number.isNaN(stoppedAt)) c.stoppedAt = new Date(stoppedAt)
    if (snapshot !== undefined) c.snapshot = snapshot
    all[k] = c
  }
  return all
}

function wrapList(Manager) {
  const native = Manager.prototype.list
  Manager.prototype.list = async function list() {
    return unpackContainers(await native.call(this))
  }
}

/**
 * `Manager.spawn` resolves to the native Process with real streams added:
 * `stdout`/`stderr` Readables that ask the native side for a chunk only
 * when the consumer wants one (backpressure), and a `stdin` Writable that
 * writes one chunk at a time and closes stdin on `end()`.
 */
function wrapSpawn(Manager) {
  const { Readable, Writable } = require('node:stream')
  const native = Manager.prototype.spawn
  const readable = (read) =>
    new Readable({
      read(size) {
        read(size).then(
          (chunk) => this.push(chunk),
          (err) => this.destroy(err),
        )
      },
    })
  Manager.prototype.spawn = async function spawn(id, cmd, options) {
    const p = await native.call(this, id, cmd, options)
    const stdin = new Writable({
      write(chunk, _encoding, done) {
        p.writeStdin(Buffer.from(chunk)).then(() => done(), done)
      },
      final(done) {
        p.closeStdin().then(() => done(), done)
      },
    })
    Object.defineProperties(p, {
      stdin: { value: stdin, enumerable: true },
      stdout: { value: readable((n) => p.readStdout(n)), enumerable: true },
      stderr: { value: readable((n) => p.readStderr(n)), enumerable: true },
    })
    return p
  }
}

module.exports = load()
wrapList(module.exports.Manager)
wrapSpawn(module.exports.Manager)
