// The Node module without a VM: loading (CJS and ESM), values, error codes,
// templates, log following of a stopped container, and process exit.
import assert from 'node:assert/strict'
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'

import * as vmc from 'vmcontainer'
import { Manager } from 'vmcontainer'

import { here, record, rejectsWith, runNode, tempHome, writeLog, writeState } from './helpers.mjs'

const homes = []
function home() {
  const h = tempHome()
  homes.push(h)
  return h
}
after(() => {
  for (const h of homes) rmSync(h, { recursive: true, force: true })
})

/** Every code the declarations allow, read from the generated index.d.ts. */
function declaredCodes() {
  const dts = readFileSync(createRequire(import.meta.url).resolve('vmcontainer/package.json').replace(/package\.json$/, 'index.d.ts'), 'utf8')
  const m = dts.match(/export type ErrorCode = ([^\n]+)/)
  assert.ok(m, 'index.d.ts declares ErrorCode')
  return new Set([...m[1].matchAll(/'([A-Z_]+)'/g)].map((x) => x[1]))
}

const API = [
  'Manager',
  'devenv',
  'applyTemplate',
  'applyVariables',
  'detectHypervisor',
  'detectImageFormat',
  'extractVariables',
  'generateId',
  'getHypervisor',
  'getTemplate',
  'listTemplates',
  'hypervisorAvailable',
  'hypervisorAccel',
  'version',
  'errorKinds',
]

describe('loading', () => {
  test('require() and import expose the same API', async () => {
    const cjs = await runNode([join(here, 'fixtures/cjs.cjs')])
    assert.equal(cjs.code, 0, cjs.stderr)
    const esm = await runNode([join(here, 'fixtures/esm.mjs')])
    assert.equal(esm.code, 0, esm.stderr)
    const cjsNames = JSON.parse(cjs.stdout)
    const esmNames = JSON.parse(esm.stdout)
    for (const name of API) {
      assert.ok(cjsNames.includes(name), `require() lacks ${name}`)
      assert.ok(esmNames.includes(name), `import lacks ${name}`)
    }
  })

  test('the Manager is a class with the documented methods', () => {
    const m = new Manager({ home: home() })
    for (const f of ['run', 'runTemplate', 'start', 'stop', 'list', 'get', 'inspect', 'remove', 'logs', 'follow', 'exec', 'waitReady']) {
      assert.equal(typeof m[f], 'function', f)
    }
    assert.equal(m.hypervisor, 'qemu')
  })
})

describe('values', () => {
  test('go-container records convert to typed JS objects', async () => {
    const h = home()
    writeState(h, [
      record('abc00001', { name: 'web', ports: { 8080: 80, 2200: 22 }, started_at: '2025-01-02T03:04:05Z' }),
      // A "running" record whose process is gone is reconciled to stopped.
      record('def00002', { name: 'db', status: 'running', pid: 2147483646, started_at: '2025-01-03T00:00:00Z' }),
      record('fff00003', { name: 'old', status: 'killed', started_at: '2025-01-04T00:00:00Z', unknown_field: { kept: true } }),
      // Strings beyond ASCII (list() packs them with UTF-16 offsets).
      record('aaa00004', {
        name: 'café-日本-🚀',
        image: '/images/ünï.qcow2',
        volumes: { '/hôst/dïr': '/mnt/ø', '/plain': '/data' },
        started_at: '2025-01-05T00:00:00Z',
      }),
    ])
    const m = new Manager({ home: h })
    const list = await m.list()
    assert.deepEqual(list.map((c) => [c.id, c.status]), [
      ['abc00001', 'stopped'],
      ['def00002', 'stopped'],
      ['fff00003', 'killed'],
      ['aaa00004', 'stopped'],
    ])
    assert.equal(list[3].name, 'café-日本-🚀')
    assert.deepEqual(list[3].volumes, { '/hôst/dïr': '/mnt/ø', '/plain': '/data' })
    // list() crosses packed, get() as native objects: the same values.
    for (const c of list) assert.deepEqual(c, await m.get(c.id))
    const web = list[0]
    assert.ok(web.startedAt instanceof Date)
    assert.equal(web.startedAt.toISOString(), '2025-01-02T03:04:05.000Z')
    assert.deepEqual(web.ports, { 2200: 22, 8080: 80 })
    assert.equal(web.memory, 1024)
    assert.equal(web.cpus, 1)
    assert.equal(web.name, 'web')
    assert.equal((await m.get('web')).id, 'abc00001')
    assert.equal((await m.get('def')).name, 'db', 'unique prefix resolves')
    const d = await m.inspect('web')
    assert.equal(d.container.id, 'abc00001')
    assert.equal(d.logPath, join(h, 'logs', 'abc00001.log'))
    // The unknown field survived the reconciling write.
    const file = JSON.parse(readFileSync(join(h, 'containers.json'), 'utf8'))
    assert.deepEqual(file.containers.fff00003.unknown_field, { kept: true })
    assert.equal(file.containers.def00002.status, 'stopped')
  })

  test('a newer status, a null name and per-mapping listen addresses read as they are', async () => {
    const h = home()
    writeState(h, [
      record('abc00001', { name: null, status: 'hibernating', ports: { 8080: 80, 8443: 443 }, bind_addresses: { 8443: '0.0.0.0' } }),
      record('../../x'),
    ])
    const m = new Manager({ home: h })
    const [c] = await m.list()
    assert.equal(c.status, 'unknown')
    assert.equal(c.statusText, 'hibernating')
    assert.equal(c.name, '')
    assert.deepEqual(c.bindAddresses, { 8443: '0.0.0.0' })
    await rejectsWith(m.get('../../x'), 'ERR_VMC_STATE_CORRUPT', 'damaged')
    await m.remove('../../x')
    await m.remove('abc00001')
    assert.deepEqual(await m.list(), [])
  })

  test('starting records and how a VM ended convert too', async () => {
    const h = home()
    writeState(h, [
      // Being started by this (live) process: left as it is.
      record('aaa00001', { status: 'starting', owner: { pid: process.pid } }),
      // Its starter is gone: an interrupted start, reconciled to error.
      record('bbb00002', { status: 'starting', owner: { pid: 2147483646 } }),
      record('ccc00003', { status: 'killed', exit_signal: 9, exit_reason: 'the hypervisor was killed' }),
    ])
    const list = await new Manager({ home: h }).list()
    assert.deepEqual(list.map((c) => [c.id, c.status]), [
      ['aaa00001', 'starting'],
      ['bbb00002', 'error'],
      ['ccc00003', 'killed'],
    ])
    assert.match(list[1].exitReason, /^start interrupted/)
    assert.equal(list[2].exitSignal, 9)
    assert.equal(list[2].exitReason, 'the hypervisor was killed')
  })

  test('ids, image formats, hypervisors', async () => {
    assert.match(vmc.generateId(), /^[0-9a-f]{8}$/)
    assert.notEqual(vmc.generateId(), vmc.generateId())
    const h = home()
    const qcow = join(h, 'disk') // no extension: sniffed
    writeFileSync(qcow, Buffer.concat([Buffer.from('QFI\xfb', 'latin1'), Buffer.alloc(600)]))
    assert.equal(await vmc.detectImageFormat(qcow), 'qcow2')
    writeFileSync(join(h, 'a.ISO'), 'x')
    assert.equal(await vmc.detectImageFormat(join(h, 'a.ISO')), 'iso')
    writeFileSync(join(h, 'lk-kernel'), 'k')
    writeFileSync(join(h, 'lk-initrd.img'), 'i')
    assert.equal(await vmc.detectImageFormat(join(h, 'lk-kernel')), 'kernel+initrd')
    assert.equal(await vmc.detectImageFormat(join(h, 'nothing.txt')), 'unknown')
    assert.equal(vmc.detectHypervisor(), 'qemu')
    assert.equal(vmc.getHypervisor('QEMU'), 'qemu')
    assert.equal(vmc.hypervisorAvailable(), true)
    assert.equal(vmc.hypervisorAvailable('qemu'), true)
    assert.equal(vmc.hypervisorAvailable('hyperkit'), false)
    const accel = await vmc.hypervisorAccel('qemu')
    assert.ok(['kvm', 'tcg', 'hvf'].includes(accel.accel), accel.accel)
    assert.equal(typeof accel.reason, 'string')
    assert.match(vmc.version(), /^\d+\.\d+\.\d+/)
  })

  test('templates', async () => {
    const h = home()
    const cwd = home()
    mkdirSync(join(h, 'linuxkit'), { recursive: true })
    writeFileSync(join(h, 'linuxkit', 'mine.yml'), '# My template\nkernel: ${KERNEL:-5.10}\nname: ${NAME}\n')
    writeFileSync(join(h, 'linuxkit', 'core-dev.yml'), '# shadowing a built-in is ignored\n')
    const opts = { home: h, cwd }
    const list = await vmc.listTemplates(opts)
    assert.deepEqual(list.map((t) => [t.name, t.builtin]), [
      ['core-dev', true],
      ['server-php', true],
      ['mine', false],
    ])
    assert.equal(list[2].description, 'My template')
    assert.equal(list[2].path, join(h, 'linuxkit', 'mine.yml'))
    const t = await vmc.getTemplate('mine', opts)
    assert.match(t.content, /\$\{NAME\}/)
    assert.deepEqual(vmc.extractVariables(t.content), { required: ['NAME'], optional: { KERNEL: '5.10' } })
    assert.equal(await vmc.applyTemplate('mine', { NAME: 'x' }, opts), '# My template\nkernel: 5.10\nname: x\n')
    const dev = await vmc.getTemplate('core-dev', opts)
    assert.ok(dev.builtin)
    assert.ok(vmc.extractVariables(dev.content).required.includes('SSH_KEY'))
    const applied = await vmc.applyTemplate('core-dev', { SSH_KEY: 'ssh-ed25519 AAAA-node-test' }, opts)
    assert.ok(applied.includes('ssh-ed25519 AAAA-node-test'))
    // One pass: a value is never expanded again.
    assert.equal(vmc.applyVariables('${A}', { A: '${B}' }), '${B}')
  })
})

describe('errors carry a stable code', () => {
  const codes = declaredCodes()
  const seen = new Set()
  async function check(p, code, part) {
    const e = await rejectsWith(p, code, part)
    assert.ok(codes.has(e.code), `${e.code} is declared in index.d.ts`)
    seen.add(e.code)
    return e
  }
  function checkSync(f, code, part) {
    return check((async () => f())(), code, part)
  }

  test('unknown container', async () => {
    const m = new Manager({ home: home() })
    await check(m.get('nope'), 'ERR_VMC_NOT_FOUND', 'nope')
    await check(m.stop('nope'), 'ERR_VMC_NOT_FOUND', 'nope')
    await check(m.remove('nope', { force: true }), 'ERR_VMC_NOT_FOUND', 'nope')
    await check(m.logs('nope'), 'ERR_VMC_NOT_FOUND', 'nope')
    await check(m.exec('nope', ['true']), 'ERR_VMC_NOT_FOUND', 'nope')
    await check(m.waitReady('nope'), 'ERR_VMC_NOT_FOUND', 'nope')
    await check(m.inspect('nope'), 'ERR_VMC_NOT_FOUND', 'nope')
    await check(m.start('nope'), 'ERR_VMC_NOT_FOUND', 'nope')
    await check(
      (async () => {
        for await (const _ of m.follow('nope')) assert.fail('no lines expected')
      })(),
      'ERR_VMC_NOT_FOUND',
      'nope',
    )
  })

  test('ambiguous prefix, not running, corrupt state', async () => {
    const h = home()
    writeState(h, [record('abc00001'), record('abc00002')])
    const m = new Manager({ home: h })
    const e = await check(m.get('abc'), 'ERR_VMC_AMBIGUOUS', 'abc00001')
    assert.match(e.message, /abc00002/)
    await check(m.stop('abc00001'), 'ERR_VMC_NOT_RUNNING', 'abc00001')
    await check(m.exec('abc00001', ['true']), 'ERR_VMC_NOT_RUNNING', 'abc00001')
    writeFileSync(join(h, 'containers.json'), '{"containers": {')
    await check(m.list(), 'ERR_VMC_STATE_CORRUPT', join(h, 'containers.json'))
  })

  test('bad run input starts nothing', async () => {
    const h = home()
    const m = new Manager({ home: h })
    const img = join(h, 'guest.iso')
    writeFileSync(img, 'not really an iso')
    await check(m.run(join(h, 'missing.qcow2'), { detach: true }), 'ERR_VMC_INVALID_INPUT', 'missing.qcow2')
    await check(m.run(img, { detach: true, memory: 0 }), 'ERR_VMC_INVALID_INPUT', 'memory')
    await check(m.run(img, { detach: true, memory: -5 }), 'ERR_VMC_INVALID_INPUT', 'memory')
    await check(m.run(img, { detach: true, ports: { 70000: 80 } }), 'ERR_VMC_INVALID_INPUT', '70000')
    await check(m.run(img, { detach: true, ports: { 8080: 70000 } }), 'ERR_VMC_INVALID_INPUT', '70000')
    await check(m.run(img, { detach: true, sshPort: 70000 }), 'ERR_VMC_INVALID_INPUT', '70000')
    await check(m.run(img, { detach: true, cpus: 0 }), 'ERR_VMC_INVALID_INPUT', 'cpus')
    await check(m.run(img, { detach: true, name: 'bad name' }), 'ERR_VMC_INVALID_INPUT', 'bad name')
    await check(m.run(img, { detach: true, bindAddress: 'nowhere' }), 'ERR_VMC_INVALID_INPUT', 'nowhere')
    await check(m.run(img, { detach: true, ports: { '1.2.3.4:5:6': 80 } }), 'ERR_VMC_INVALID_INPUT', '4 fields')
    await check(m.run(img, { detach: true, volumes: { '/no/such/dir': '/mnt/x' } }), 'ERR_VMC_INVALID_INPUT', '/no/such/dir')
    await check(m.run(join(h, 'readme.txt'), { detach: true }), 'ERR_VMC_INVALID_INPUT')
    await check(m.stop('x', { timeout: -1 }), 'ERR_VMC_INVALID_INPUT', 'timeout')
    // Runs are detached by default; the output callback is for the
    // foreground only.
    await check(m.run(img, { onOutput: () => {} }), 'ERR_VMC_INVALID_INPUT', 'detach: false')
    await check(m.runTemplate('core-dev'), 'ERR_VMC_TEMPLATE_VARIABLES', 'SSH_KEY')
    await check(m.runTemplate('nope', {}, { cwd: h }), 'ERR_VMC_TEMPLATE', 'nope')
    assert.deepEqual(await m.list(), [], 'nothing was recorded')
  })

  test('hypervisors and templates', async () => {
    await checkSync(() => vmc.getHypervisor('xen'), 'ERR_VMC_INVALID_INPUT', 'xen')
    await checkSync(() => vmc.getHypervisor('hyperkit'), 'ERR_VMC_HYPERVISOR_UNAVAILABLE', 'macOS')
    await checkSync(() => new Manager({ home: home(), hypervisor: 'xen' }), 'ERR_VMC_INVALID_INPUT', 'xen')
    const e = await checkSync(() => vmc.applyVariables('${B} ${A} ${C:-c}', {}), 'ERR_VMC_TEMPLATE_VARIABLES', 'missing required variables')
    assert.match(e.message, /A, B/)
    await check(vmc.getTemplate('no-such-template', { home: home() }), 'ERR_VMC_TEMPLATE', 'no-such-template')
    await check(vmc.applyTemplate('server-php', {}), 'ERR_VMC_TEMPLATE_VARIABLES', 'SSH_KEY')
  })

  test('an unreadable log is an I/O error naming the file', async () => {
    // A directory where the log should be: unreadable even for root.
    const h = home()
    writeState(h, [record('abc00001')])
    mkdirSync(join(h, 'logs', 'abc00001.log'), { recursive: true })
    await check(new Manager({ home: h }).logs('abc00001'), 'ERR_VMC_IO', 'abc00001.log')
  })

  test('every code seen is an Error with the core message', () => {
    assert.ok(seen.size >= 9, `codes seen: ${[...seen]}`)
  })
})

describe('follow', () => {
  test('a stopped container yields its log and ends; break closes', async () => {
    const h = home()
    writeState(h, [record('abc00001')])
    writeLog(h, 'abc00001', 'one\r\ntwo\nthree (no newline)')
    const m = new Manager({ home: h })
    const lines = []
    for await (const line of m.follow('abc00001')) lines.push(line)
    assert.deepEqual(lines, ['one', 'two', 'three (no newline)'])
    const stream = m.follow('abc00001')
    for await (const line of stream) {
      assert.equal(line, 'one')
      break
    }
    const again = await stream[Symbol.asyncIterator]().next()
    assert.equal(again.done, true, 'a closed stream stays closed')
    assert.equal(await m.logs('abc00001'), 'one\r\ntwo\nthree (no newline)')
  })
})

describe('process lifetime', () => {
  test('a program exits by itself when its work is done', async () => {
    const h = home()
    writeState(h, [record('abc00001')])
    writeLog(h, 'abc00001', 'a\nb\n')
    const r = await runNode([join(here, 'fixtures/exits.mjs'), h, 'abc00001'], { timeoutMs: 30_000 })
    assert.equal(r.killed, false, `did not exit within 30 s; stderr: ${r.stderr}`)
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /get: ERR_VMC_NOT_FOUND/)
    assert.deepEqual(JSON.parse(r.stdout.trim().split('\n').pop()), { containers: 1, lines: ['a', 'b', 'a'] })
    assert.ok(r.ms < 10_000, `took ${r.ms} ms`)
  })
})
