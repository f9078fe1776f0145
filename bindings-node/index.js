'use strict'
// CommonJS entry: the native module built by `npm install` (napi build).
const { join } = require('node:path')

const file = join(__dirname, 'vmcontainer.node')
try {
  module.exports = require(file)
  wrapList(module.exports.Manager)
} catch (e) {
  if (e && e.code === 'MODULE_NOT_FOUND' && String(e.message).includes(file)) {
    throw new Error(
      `vmcontainer: the native module ${file} is missing; build it with ` +
        '`npm run build` in the bindings-node directory (needs Rust/cargo)',
      { cause: e },
    )
  }
  throw e
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
