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

// `Manager.list` gets the list from the native module as one JSON string
// (one call, one JSON.parse: much cheaper than building each object field
// by field through N-API); here its times become Dates, so the objects are
// the same as those of `get`.
function wrapList(Manager) {
  const native = Manager.prototype.list
  Manager.prototype.list = async function list() {
    const all = JSON.parse(await native.call(this))
    for (const c of all) {
      c.startedAt = new Date(c.startedAt)
      if (c.stoppedAt !== undefined) c.stoppedAt = new Date(c.stoppedAt)
    }
    return all
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
