// Manager.push/pull/pulledImages/exportKubevirt against a real registry
// (docker-registry on loopback, see helpers.mjs). No VM boots: push and pull
// move the test guest's image files; the export renders an image's
// VirtualMachine.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'

import { Manager } from 'vmcontainer'

import { guest, rejectsWith, startRegistry, tempHome } from './helpers.mjs'

const dirs = []
function temp() {
  const d = tempHome()
  dirs.push(d)
  return d
}

const sha256 = (p) => createHash('sha256').update(readFileSync(p)).digest('hex')
const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

describe('registry', () => {
  let registry
  let disk
  before(async () => {
    registry = await startRegistry(temp())
    const g = guest()
    disk = join(g, readdirSync(g).filter((f) => f.endsWith('.qcow2')).sort()[0])
  })
  after(() => {
    registry?.stop()
    for (const d of dirs) rmSync(d, { recursive: true, force: true })
  })

  test('push and pull round-trip with progress', async () => {
    const m = new Manager({ home: temp() })
    const ref = `${registry.addr}/faces/node-disk:v1`
    const size = statSync(disk).size
    const seen = []
    const pushed = await m.push(disk, ref, { onProgress: (sent, total) => seen.push([sent, total]) })
    assert.equal(pushed.reference, ref)
    assert.match(pushed.digest, /^sha256:[0-9a-f]{64}$/)
    assert.deepEqual([pushed.format, pushed.kind, pushed.size], ['qcow2', 'vmcontainer', size])
    assert.deepEqual(seen.at(-1), [size, size], 'the last progress value arrives before the Promise settles')

    const other = new Manager({ home: temp() })
    const got = []
    const pulled = await other.pull(ref, { onProgress: (n, total) => got.push([n, total]) })
    assert.deepEqual([pulled.reference, pulled.digest, pulled.format], [ref, pushed.digest, 'qcow2'])
    assert.equal(pulled.alreadyPresent, false)
    assert.equal(pulled.downloaded, size)
    assert.ok(pulled.pulledAt instanceof Date)
    assert.ok(pulled.path.startsWith(other.home), pulled.path)
    assert.equal(sha256(pulled.path), sha256(disk))
    assert.equal(got.at(-1)[0], size)
    const listed = await other.pulledImages()
    assert.deepEqual(
      listed.map((i) => [i.reference, i.digest, i.path, i.alreadyPresent]),
      [[ref, pushed.digest, pulled.path, true]],
    )
    const again = await other.pull(ref)
    assert.deepEqual([again.alreadyPresent, again.downloaded, again.path], [true, 0, pulled.path])
  })

  test('exportKubevirt boots the containerDisk pushed from the image', async () => {
    const m = new Manager({ home: temp() })
    await rejectsWith(m.exportKubevirt(disk), 'ERR_VMC_INVALID_INPUT', '--containerdisk')
    const cd = `${registry.addr}/faces/node-containerdisk:v1`
    const r = await m.push(disk, cd, { containerdisk: true })
    assert.equal(r.kind, 'containerdisk')
    const yaml = await m.exportKubevirt(disk)
    assert.match(yaml, /apiVersion: kubevirt\.io\/v1/)
    assert.match(yaml, /kind: VirtualMachine/)
    assert.match(yaml, new RegExp(`image: ['"]?${escape(cd)}`))
    const named = `${registry.addr}/faces/other:v2`
    assert.match(await m.exportKubevirt(disk, { imageRef: named }), new RegExp(`image: ['"]?${escape(named)}`))
    await rejectsWith(m.exportKubevirt('no-such-thing'), 'ERR_VMC_NOT_FOUND', 'no-such-thing')
  })

  test('bad input is rejected with the failing reference', async () => {
    const m = new Manager({ home: temp() })
    await rejectsWith(m.pull(`${registry.addr}/faces/node-missing:v1`), 'ERR_VMC_DOWNLOAD', 'node-missing')
    await rejectsWith(m.push(disk, `${registry.addr}/../etc:v1`), 'ERR_VMC_INVALID_INPUT', 'reference')
    const port = await new Promise((res) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = s.address().port
        s.close(() => res(p))
      })
    })
    await rejectsWith(m.pull(`127.0.0.1:${port}/faces/x:v1`), 'ERR_VMC_DOWNLOAD', `127.0.0.1:${port}`)
    assert.deepEqual(await m.pulledImages(), [])
  })
})
