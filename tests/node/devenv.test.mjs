// `devenv` without a VM: project detection, `.core/test.yaml`, and the dev
// image's install from a loopback CDN (progress, verification, status,
// update checks). Booting the dev VM is covered by the CLI's tests.
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { stat } from 'node:fs/promises'
import { getEventListeners } from 'node:events'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { after, before, describe, test } from 'node:test'

import { devenv } from 'vmcontainer'

import { here, rejectsWith, runNode, startCdn, tempHome, timerGaps, until, writeCdnConfig } from './helpers.mjs'

// The images directory must be the one under each test home.
delete process.env.CORE_IMAGES_DIR

const dirs = []
function temp() {
  const d = tempHome()
  dirs.push(d)
  return d
}
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

/** A temporary project directory holding `files` (name → content). */
function project(files) {
  const d = temp()
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(dirname(join(d, name)), { recursive: true })
    writeFileSync(join(d, name), content)
  }
  return d
}

const PKG_DEV_START = '{"scripts": {"dev": "vite", "start": "node ."}}'
const PKG_START = '{"scripts": {"start": "node ."}}'
const PKG_TEST = '{"scripts": {"test": "jest"}}'
const COMPOSER_TEST = '{"scripts": {"test": ["phpunit"]}}'

/** The files from index `from` of `entries` on, as an object. */
const from = (entries, i) => Object.fromEntries(entries.slice(i))

test('the namespace is the same object through require() and import', () => {
  const cjs = createRequire(import.meta.url)('vmcontainer')
  assert.equal(cjs.devenv, devenv)
  for (const f of ['DevOps', 'detectServeCommand', 'detectTestCommand', 'loadTestConfig', 'imageName']) {
    assert.equal(typeof devenv[f], 'function', f)
  }
  assert.match(devenv.imageName(), /^core-devops-[a-z0-9]+-[a-z0-9]+\.qcow2$/)
  if (process.platform === 'linux' && process.arch === 'x64') {
    assert.equal(devenv.imageName(), 'core-devops-linux-amd64.qcow2')
  }
})

describe('detection', () => {
  test('serve: every rule, in priority order', async () => {
    const all = [
      ['artisan', ''],
      ['package.json', PKG_DEV_START],
      ['composer.json', '{}'],
      ['go.mod', 'module x'],
      ['main.go', 'package main'],
      ['manage.py', ''],
    ]
    const serve = (files) => devenv.detectServeCommand(project(files))
    assert.equal(await serve(from(all, 0)), 'php artisan octane:start --host=0.0.0.0 --port=8000')
    assert.equal(await serve(from(all, 1)), 'npm run dev -- --host 0.0.0.0')
    assert.equal(await serve({ ...from(all, 1), 'package.json': PKG_START }), 'npm start')
    // package.json without dev/start scripts falls through.
    assert.equal(await serve({ ...from(all, 1), 'package.json': PKG_TEST }), 'frankenphp php-server -l :8000')
    assert.equal(await serve(from(all, 2)), 'frankenphp php-server -l :8000')
    assert.equal(await serve(from(all, 3)), 'go run .')
    // go.mod without main.go is not a server.
    assert.equal(await serve({ 'go.mod': '', 'manage.py': '' }), 'python manage.py runserver 0.0.0.0:8000')
    assert.equal(await serve(from(all, 5)), 'python manage.py runserver 0.0.0.0:8000')
    assert.equal(await serve({}), 'python3 -m http.server 8000')
    assert.equal(await serve({ 'package.json': '{not json' }), 'python3 -m http.server 8000', 'invalid JSON has no scripts')
  })

  test('test: every rule, in priority order', async () => {
    const all = [
      ['.core/test.yaml', 'command: make check\n'],
      ['composer.json', COMPOSER_TEST],
      ['package.json', PKG_TEST],
      ['go.mod', 'module x'],
      ['pytest.ini', ''],
      ['Taskfile.yaml', ''],
    ]
    const detect = (files) => devenv.detectTestCommand(project(files))
    assert.equal(await detect(from(all, 0)), 'make check')
    assert.equal(await detect(from(all, 1)), 'composer test')
    assert.equal(await detect(from(all, 2)), 'npm test')
    assert.equal(await detect(from(all, 3)), 'go test ./...')
    assert.equal(await detect(from(all, 4)), 'pytest')
    assert.equal(await detect(from(all, 5)), 'task test')
    assert.equal(await detect({ 'pyproject.toml': '' }), 'pytest')
    assert.equal(await detect({ 'Taskfile.yml': '' }), 'task test')
    assert.equal(await detect({}), null)
    // Without a test script composer.json and package.json fall through.
    assert.equal(await detect({ 'composer.json': '{}', 'package.json': PKG_START }), null)
    // A test.yaml with only named commands falls through; so does an invalid one.
    assert.equal(await detect({ '.core/test.yaml': 'commands:\n  - {name: a, run: b}\n', 'go.mod': '' }), 'go test ./...')
    assert.equal(await detect({ '.core/test.yaml': 'command: [x\n', 'go.mod': '' }), 'go test ./...')
  })

  test('loadTestConfig: null, the file as an object, or a coded error naming file and line', async () => {
    assert.equal(await devenv.loadTestConfig(project({})), null)
    const dir = project({
      '.core/test.yaml':
        'version: 1\ncommand: composer test\ncommands:\n  - name: unit\n    run: vendor/bin/phpunit --testsuite unit\nenv:\n  APP_ENV: testing\n',
    })
    assert.deepEqual({ ...(await devenv.loadTestConfig(dir)) }, {
      version: 1,
      command: 'composer test',
      commands: [{ name: 'unit', run: 'vendor/bin/phpunit --testsuite unit' }],
      env: { APP_ENV: 'testing' },
    })
    const named = await devenv.loadTestConfig(project({ '.core/test.yaml': 'commands:\n  - {name: a, run: b}\n' }))
    assert.equal(named.command, undefined, 'no default command')
    assert.deepEqual(named.env, {})
    const bad = project({ '.core/test.yaml': 'command: x\nenv: [a\n' })
    const e = await rejectsWith(devenv.loadTestConfig(bad), 'ERR_VMC_INVALID_INPUT', join(bad, '.core/test.yaml'))
    assert.match(e.message, /line \d+/)
  })
})

describe('DevOps without a VM', () => {
  test('status, state errors and command resolution', async () => {
    const home = temp()
    const d = new devenv.DevOps({ home })
    assert.equal(d.home, home)
    assert.equal(d.imagePath, join(home, 'images', devenv.imageName()))
    const s = await d.status()
    assert.deepEqual({ ...s }, { installed: false, running: false, imagePath: d.imagePath })
    assert.equal(await d.isRunning(), false)
    assert.equal(await d.isInstalled(), false)
    await rejectsWith(d.boot(), 'ERR_VMC_NOT_FOUND', 'not installed')
    await rejectsWith(d.boot({ memory: -1 }), 'ERR_VMC_INVALID_INPUT', 'memory')
    await rejectsWith(d.checkUpdate(), 'ERR_VMC_NOT_FOUND', d.imagePath)
    await rejectsWith(d.stop(), 'ERR_VMC_NOT_RUNNING', 'dev boot')
    await rejectsWith(d.test(), 'ERR_VMC_NOT_RUNNING')
    // serve's abort listener is on the signal only while the call runs.
    const ac = new AbortController()
    const serving = d.serve({ signal: ac.signal })
    assert.equal(getEventListeners(ac.signal, 'abort').length, 1)
    await rejectsWith(serving, 'ERR_VMC_NOT_RUNNING', 'dev boot')
    assert.equal(getEventListeners(ac.signal, 'abort').length, 0, 'the listener was removed')
    await rejectsWith(d.serve({ signal: AbortSignal.abort() }), 'ERR_VMC_NOT_RUNNING')
    await rejectsWith(d.shell(['true']), 'ERR_VMC_NOT_RUNNING')
    await rejectsWith(d.shell([]), 'ERR_VMC_NOT_RUNNING')
    await rejectsWith(d.shell(['true'], { console: true }), 'ERR_VMC_INVALID_INPUT', 'console')
    await rejectsWith(d.claude({ auth: ['aws'] }), 'ERR_VMC_INVALID_INPUT', 'aws')
    assert.throws(() => d.serve({ signal: {} }), /AbortSignal/)

    // What test and serve would run, without a VM.
    const proj = project({ '.core/test.yaml': 'command: make check\ncommands:\n  - {name: unit, run: make unit}\n', 'go.mod': '' })
    assert.equal(await d.testCommand({ project: proj }), 'make check')
    assert.equal(await d.testCommand({ project: proj, name: 'unit' }), 'make unit')
    assert.equal(await d.testCommand({ project: proj, name: 'unit', command: ['go', 'test', "it's"] }), "go test 'it'\\''s'")
    const e = await rejectsWith(d.testCommand({ project: proj, name: 'e2e' }), 'ERR_VMC_INVALID_INPUT', 'e2e')
    assert.match(e.message, /known: unit/)
    await rejectsWith(d.testCommand({ project: project({}) }), 'ERR_VMC_INVALID_INPUT', 'could not detect a test command')
    await rejectsWith(d.testCommand({ project: join(home, 'missing') }), 'ERR_VMC_IO', 'missing')
    assert.equal(await d.serveCommand({ project: proj }), 'python3 -m http.server 8000')
    assert.equal(await d.serveCommand({ project: project({ 'sub/manage.py': '' }), path: 'sub' }), 'python manage.py runserver 0.0.0.0:8000')
    assert.equal(await d.serveCommand({ command: ['node', 'server.js'] }), 'node server.js')
    await rejectsWith(d.serveCommand({ port: 70000, signal: ac.signal }), 'ERR_VMC_INVALID_INPUT', '70000')
    assert.equal(getEventListeners(ac.signal, 'abort').length, 0)
  })

  test('an invalid config.yaml throws, naming the file', () => {
    const home = temp()
    writeFileSync(join(home, 'config.yaml'), 'images:\n  source: [x\n')
    assert.throws(
      () => new devenv.DevOps({ home }),
      (e) => e.code === 'ERR_VMC_INVALID_INPUT' && e.message.includes(join(home, 'config.yaml')),
    )
  })
})

describe('install from a loopback CDN', () => {
  const name = devenv.imageName()
  const image = randomBytes(2 * 1024 * 1024)
  const sha256 = createHash('sha256').update(image).digest('hex')
  let cdn
  before(async () => {
    cdn = await startCdn({ name, image, version: '1.2.3' })
  })
  after(async () => {
    await cdn?.close()
  })

  /** A home whose config.yaml points at the CDN. */
  function cdnHome() {
    const home = temp()
    writeCdnConfig(home, cdn.url)
    return home
  }

  /** Installs with a recording onProgress; checks nothing arrives after settling. */
  async function install(d, onProgress = () => {}, method = 'install') {
    const calls = []
    let settled = false
    const late = []
    const p = d[method]({
      onProgress: (downloaded, total) => {
        if (settled) late.push(downloaded)
        calls.push([downloaded, total])
        onProgress(downloaded, total)
      },
    })
    p.then(
      () => (settled = true),
      () => (settled = true),
    )
    let result
    let error
    try {
      result = await p
    } catch (e) {
      error = e
    }
    await new Promise((r) => setTimeout(r, 100))
    assert.deepEqual(late, [], 'no progress after the Promise settled')
    return { result, error, calls }
  }

  test('progress, status, manifest, checkUpdate, reinstall', async () => {
    const home = cdnHome()
    const d = new devenv.DevOps({ home })
    cdn.state.version = '1.2.3'
    const { result: report, error, calls } = await install(d)
    assert.equal(error, undefined)
    assert.deepEqual({ ...report }, {
      path: d.imagePath,
      version: '1.2.3',
      source: 'cdn',
      sha256,
      size: image.length,
      resumedFrom: 0,
      alreadyInstalled: false,
    })
    assert.ok(calls.length >= 2, `progress reported ${calls.length} times`)
    for (let i = 1; i < calls.length; i++) {
      assert.ok(calls[i][0] > calls[i - 1][0], `downloaded increases: ${JSON.stringify(calls.slice(i - 1, i + 1))}`)
    }
    assert.ok(calls.every(([, total]) => total === image.length), 'every call has the total')
    assert.deepEqual(calls.at(-1), [image.length, image.length], 'the final call is complete')
    assert.ok(readFileSync(d.imagePath).equals(image))

    const s = await d.status()
    assert.equal(s.installed, true)
    assert.equal(s.imageVersion, '1.2.3')
    assert.equal(s.running, false)
    assert.equal(await d.isInstalled(), true)
    const manifest = JSON.parse(readFileSync(join(home, 'images', 'manifest.json'), 'utf8'))
    assert.equal(manifest.images[name].version, '1.2.3')
    assert.equal(manifest.images[name].sha256, sha256)
    assert.equal(manifest.images[name].source, 'cdn')

    assert.deepEqual({ ...(await d.checkUpdate()) }, { current: '1.2.3', latest: '1.2.3', hasUpdate: false })
    assert.equal(await d.update(), null, 'nothing newer')
    cdn.state.version = '1.3.0'
    assert.deepEqual({ ...(await d.checkUpdate()) }, { current: '1.2.3', latest: '1.3.0', hasUpdate: true })

    // The same bytes again: nothing is downloaded.
    const downloads = cdn.requests.filter((u) => u.endsWith(name)).length
    const again = await install(d)
    assert.equal(again.result.alreadyInstalled, true)
    assert.deepEqual(again.calls, [])
    assert.equal(cdn.requests.filter((u) => u.endsWith(name)).length, downloads)
    cdn.state.version = '1.2.3'
  })

  test('a throwing onProgress is reported as a warning and the download goes on', async () => {
    const warnings = []
    const onWarning = (w) => warnings.push(w)
    process.on('warning', onWarning)
    try {
      const d = new devenv.DevOps({ home: cdnHome() })
      const boom = new Error('progress boom')
      let n = 0
      const { result, error, calls } = await install(d, () => {
        if (++n === 1) throw boom
      })
      assert.equal(error, undefined)
      assert.equal(result.size, image.length)
      assert.ok(calls.length >= 2, 'calls went on after the throw')
      assert.deepEqual(calls.at(-1), [image.length, image.length])
      await until(() => warnings.includes(boom), 5000, 'the warning')
    } finally {
      process.off('warning', onWarning)
    }
  })

  test('a wrong checksum rejects with a code and installs nothing', async () => {
    const home = cdnHome()
    const d = new devenv.DevOps({ home })
    cdn.state.sha256 = createHash('sha256').update('other bytes').digest('hex')
    try {
      const { error } = await install(d)
      assert.ok(error instanceof Error, 'install rejected')
      assert.equal(error.code, 'ERR_VMC_CHECKSUM')
      assert.match(error.message, /checksum mismatch/)
      assert.ok(error.message.includes(cdn.state.sha256), 'the message names the expected hash')
      assert.equal(existsSync(d.imagePath), false)
      const images = join(home, 'images')
      const left = existsSync(images) ? readdirSync(images).filter((f) => !f.endsWith('.lock')) : []
      assert.deepEqual(left, [], 'no image, partial file or manifest left')
      assert.equal((await d.status()).installed, false)
      await rejectsWith(d.checkUpdate(), 'ERR_VMC_NOT_FOUND')
    } finally {
      cdn.state.sha256 = undefined
    }
  })

  test('a missing image and a dropped download reject with ERR_VMC_DOWNLOAD', async () => {
    const home = cdnHome()
    const d = new devenv.DevOps({ home })
    cdn.state.imageStatus = 404
    try {
      const { error } = await install(d)
      assert.ok(error instanceof Error, 'install rejected')
      assert.equal(error.code, 'ERR_VMC_DOWNLOAD')
      assert.match(error.message, /HTTP 404/)
      assert.ok(error.message.includes(`${cdn.url}/${name}`), 'the message names the URL')
      assert.equal(existsSync(d.imagePath), false)

      // Every attempt drops the connection half-way: interrupted, resumable.
      cdn.state.imageStatus = undefined
      cdn.state.cutAfter = image.length / 2
      const dropped = await install(d)
      assert.equal(dropped.error?.code, 'ERR_VMC_DOWNLOAD')
      assert.match(dropped.error.message, /interrupted/)
      assert.equal(existsSync(d.imagePath), false)

      // The next attempt, with the fault gone, installs.
      cdn.state.cutAfter = undefined
      const { result, error: none } = await install(d)
      assert.equal(none, undefined)
      assert.equal(result.size, image.length)
    } finally {
      cdn.state.imageStatus = undefined
      cdn.state.cutAfter = undefined
    }
  })

  test('a bad update keeps the installed image', async () => {
    const home = cdnHome()
    const d = new devenv.DevOps({ home })
    cdn.state.version = '1.2.3'
    await d.install()
    const newer = randomBytes(128 * 1024)
    cdn.state.image = newer
    cdn.state.version = '2.0.0'
    cdn.state.sha256 = createHash('sha256').update('not the new bytes').digest('hex')
    try {
      const { error } = await install(d, undefined, 'update')
      assert.equal(error?.code, 'ERR_VMC_CHECKSUM')
      assert.ok(readFileSync(d.imagePath).equals(image), 'the old image is untouched')
      assert.equal((await d.status()).imageVersion, '1.2.3')
      cdn.state.sha256 = undefined
      const { result, calls } = await install(d, undefined, 'update')
      assert.equal(result.version, '2.0.0')
      assert.deepEqual(calls.at(-1), [newer.length, newer.length])
      assert.ok(readFileSync(d.imagePath).equals(newer))
    } finally {
      cdn.state.image = image
      cdn.state.version = '1.2.3'
      cdn.state.sha256 = undefined
    }
  })

  test('downloads stay off the event loop and the libuv threadpool', async () => {
    // Five slow installs at once (more than the pool's four threads): a
    // threadpool job (fs.stat) still completes at once, timers keep firing.
    cdn.state.delay = 40
    try {
      const homes = [1, 2, 3, 4, 5].map(() => cdnHome())
      let statMs
      const r = await timerGaps(async () => {
        const installs = homes.map((home) => new devenv.DevOps({ home }).install({ onProgress: () => {} }))
        await new Promise((r) => setTimeout(r, 200))
        const t = performance.now()
        await stat(here)
        statMs = performance.now() - t
        return Promise.all(installs)
      })
      assert.ok(r.value.every((x) => x.size === image.length))
      assert.ok(r.ms > 1000, `the installs were slow (${r.ms} ms)`)
      assert.ok(statMs < 500, `fs.stat took ${statMs} ms during the installs`)
      assert.ok(r.maxGap < 1000, `timer stalled ${r.maxGap} ms`)
    } finally {
      cdn.state.delay = 2
    }
  })

  test('a program that installs with onProgress exits by itself', async () => {
    const r = await runNode([join(here, 'fixtures/install-exits.mjs'), temp()], { timeoutMs: 30_000 })
    assert.equal(r.killed, false, `did not exit within 30 s; stderr: ${r.stderr}`)
    assert.equal(r.code, 0, r.stderr)
    const out = JSON.parse(r.stdout.trim().split('\n').pop())
    assert.equal(out.version, '9.9.9')
    assert.ok(out.calls >= 1)
  })
})
