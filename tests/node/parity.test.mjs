// Every Node name in api/operations.toml exists in the module's exports,
// and every error kind of the core has its declared `code`.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { test } from 'node:test'

import * as vmc from 'vmcontainer'

import { repo } from './helpers.mjs'

/** api/operations.toml in the subset of TOML it keeps to (the Rust tests
 * reject anything else): `[op.NAME]` tables of `key = "value"` lines. */
function operations() {
  const ops = {}
  let cur = null
  for (const raw of readFileSync(join(repo, 'api', 'operations.toml'), 'utf8').split('\n')) {
    const line = raw.trim()
    if (!line || line.startsWith('#')) continue
    if (line.startsWith('[op.') && line.endsWith(']')) {
      cur = ops[line.slice(4, -1)] = {}
    } else if (line.startsWith('[')) {
      cur = null
    } else if (cur) {
      const i = line.indexOf(' = ')
      assert.ok(i > 0, line)
      cur[line.slice(0, i)] = line.slice(i + 3).replace(/^"|"$/g, '')
    }
  }
  return ops
}

/** `a.B.c`: a function or class, or a method of a class's prototype. */
function resolve(path) {
  let obj = vmc
  for (const part of path.split('.')) {
    if (obj == null) return undefined
    obj = part in obj ? obj[part] : obj.prototype?.[part]
  }
  return obj
}

test('every listed Node name exists', () => {
  const ops = operations()
  assert.ok(Object.keys(ops).length > 40)
  let checked = 0
  for (const [op, fields] of Object.entries(ops)) {
    assert.ok(fields.node, `[op.${op}] has no node name`)
    if (fields.node.startsWith('none:')) continue
    for (const name of fields.node.split(',').map((s) => s.trim())) {
      assert.ok(resolve(name) !== undefined, `[op.${op}]: the module has no ${name}`)
      checked++
    }
  }
  assert.ok(checked > 40, `only ${checked} names checked`)
})

test('every core error kind has its code, and only those', () => {
  const dts = readFileSync(createRequire(import.meta.url).resolve('vmcontainer/package.json').replace(/package\.json$/, 'index.d.ts'), 'utf8')
  const m = dts.match(/export type ErrorCode = ([^\n]+)/)
  assert.ok(m, 'index.d.ts declares ErrorCode')
  const declared = new Set([...m[1].matchAll(/'([A-Z_]+)'/g)].map((x) => x[1]))
  const kinds = vmc.errorKinds()
  assert.ok(kinds.length >= 17)
  assert.deepEqual(new Set(kinds.map((k) => `ERR_VMC_${k.toUpperCase()}`)), declared)
})
