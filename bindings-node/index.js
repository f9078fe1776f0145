'use strict'
// CommonJS entry: the native module built by `npm install` (napi build).
const { join } = require('node:path')

const file = join(__dirname, 'vmcontainer.node')
try {
  module.exports = require(file)
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
