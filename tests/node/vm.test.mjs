// Boots the test guest (tests/guest/build.sh) through the Node module, one
// VM at a time. Every VM is removed with force in `after`, even when a test
// fails.
import assert from 'node:assert/strict'
import { stat } from 'node:fs/promises'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'

import { Manager } from 'vmcontainer'

import { guest, here, rejectsWith, runNode, tempHome, timerGaps, until } from './helpers.mjs'
import { spawnChecks } from './spawn_checks.mjs'

// TCG on a loaded two-core machine is slow: be generous with boots.
const BOOT_TIMEOUT_S = 300
// A blocked event loop shows up as one gap as long as the whole wait.
const MAX_TIMER_GAP_MS = 1000

let dir
let image
let key
let home
let m

before(() => {
  dir = guest()
  image = join(dir, 'vmtest-kernel')
  key = join(dir, 'id_ed25519')
  home = tempHome()
  m = new Manager({ home })
})

after(async () => {
  if (m) {
    for (const c of await m.list().catch(() => [])) {
      await m.remove(c.id, { force: true }).catch((e) => console.error(`cleanup of ${c.id}: ${e.message}`))
    }
  }
  if (home) rmSync(home, { recursive: true, force: true })
})

const timings = {}
after(() => console.log(`# timings (ms): ${JSON.stringify(timings)}`))

test('detached lifecycle: run, waitReady, exec, follow, stop, remove', { timeout: 900_000 }, async () => {
  let t = performance.now()
  const c = await m.run(image, { name: 'node-life', detach: true, memory: 512, sshKey: key })
  timings.run = Math.round(performance.now() - t)
  assert.equal(c.status, 'running')
  assert.equal(c.name, 'node-life')
  assert.equal(c.format, 'kernel+initrd')
  assert.equal(c.memory, 512)
  assert.ok(c.sshPort > 0, 'an SSH port was picked')
  assert.ok(c.pid > 0)
  assert.ok(c.startedAt instanceof Date)
  assert.equal(c.sshKey, key)
  assert.deepEqual((await m.list()).map((x) => x.id), [c.id])

  // A running container is not removed without force.
  await rejectsWith(m.remove(c.id), 'ERR_VMC_RUNNING', c.id)

  // Long waits stay off the event loop and off libuv's threadpool: with
  // five waits in flight (more than the pool's four threads) a threadpool
  // job (fs.stat) still completes at once, and a timer keeps firing.
  t = performance.now()
  const ready = await timerGaps(async () => {
    const waits = [1, 2, 3, 4].map(() => m.waitReady(c.id, { timeout: BOOT_TIMEOUT_S * 1000 }))
    const fsStarted = performance.now()
    await stat(here)
    timings.fsStatDuringWaits = Math.round(performance.now() - fsStarted)
    const r = await m.waitReady(c.id, { timeout: BOOT_TIMEOUT_S * 1000 })
    await Promise.all(waits)
    return r
  })
  timings.waitReady = Math.round(performance.now() - t)
  timings.waitReadyMaxTimerGap = Math.round(ready.maxGap)
  assert.ok(timings.fsStatDuringWaits < 500, `fs.stat took ${timings.fsStatDuringWaits} ms while waits were pending`)
  assert.equal(ready.value.id, c.id)
  assert.ok(ready.maxGap < MAX_TIMER_GAP_MS, `timer stalled ${ready.maxGap} ms during waitReady`)
  assert.ok(ready.ticks > ready.ms / 20 / 4, `only ${ready.ticks} ticks in ${ready.ms} ms`)

  // exec: exit code and both streams, argv intact.
  t = performance.now()
  const out = await m.exec(c.id, ['sh', '-c', 'echo out; echo err >&2; exit 3'])
  timings.firstExec = Math.round(performance.now() - t)
  assert.deepEqual({ ...out }, { exitCode: 3, stdout: 'out\n', stderr: 'err\n' })
  t = performance.now()
  const args = await m.exec('node-life', ['printf', '%s|', 'a b', "it's", '$HOME'])
  timings.secondExec = Math.round(performance.now() - t)
  assert.equal(args.stdout, "a b|it's|$HOME|")
  assert.equal(args.exitCode, 0)
  // stdin bytes and a chosen transport; inspect says which answer.
  const upper = await m.exec(c.id, ['tr', 'a-z', 'A-Z'], { input: Buffer.from('hello'), transport: 'ssh' })
  assert.equal(upper.stdout, 'HELLO')
  assert.deepEqual((await m.inspect(c.id)).transports, ['ssh'])

  // copyTo / copyFrom, a file and a directory, both ways.
  const work = mkdtempSync(join(tmpdir(), 'vmcnode'))
  const data = randomBytes(300_000)
  writeFileSync(join(work, 'f.bin'), data)
  mkdirSync(join(work, 'd'))
  writeFileSync(join(work, 'd', 'x.txt'), 'x')
  await m.copyTo(c.id, join(work, 'f.bin'), '/tmp/node.bin')
  await m.copyTo(c.id, join(work, 'd'), '/tmp/noded', { archive: true, transport: 'auto' })
  await m.copyFrom(c.id, '/tmp/node.bin', join(work, 'back.bin'))
  await m.copyFrom(c.id, '/tmp/noded', join(work, 'dback'))
  assert.ok(readFileSync(join(work, 'back.bin')).equals(data))
  assert.equal(readFileSync(join(work, 'dback', 'x.txt'), 'utf8'), 'x')
  await rejectsWith(m.copyFrom(c.id, '/no/such', work), 'ERR_VMC_INVALID_INPUT', '/no/such')
  rmSync(work, { recursive: true, force: true })

  // spawn: streams, stdin, signals, timeout, a terminal.
  await spawnChecks(m, c.id)

  // follow: a line the guest writes arrives; break ends the stream.
  const stream = m.follow(c.id)
  let wrote = 0
  let markerLine
  for await (const line of stream) {
    if (!wrote) {
      // The stream is open (it delivered a line): now make the guest write.
      await m.exec(c.id, ['sh', '-c', 'echo node-marker-$((6*7)) > /dev/console'])
      wrote = performance.now()
    }
    if (line.includes('node-marker-42')) {
      markerLine = line
      break
    }
  }
  timings.markerAfterExec = Math.round(performance.now() - wrote)
  assert.match(markerLine, /node-marker-42/)
  assert.equal((await stream[Symbol.asyncIterator]().next()).done, true, 'break closed the stream')

  // A second process uses the VM and exits by itself when done.
  const child = await runNode([join(here, 'fixtures/vm-client.mjs'), home, c.id], { timeoutMs: 120_000 })
  timings.childProcess = child.ms
  assert.equal(child.killed, false, `child did not exit by itself: ${child.stderr}`)
  assert.equal(child.code, 0, child.stderr)
  const childOut = JSON.parse(child.stdout.trim().split('\n').pop())
  assert.equal(childOut.stdout, 'from-child\n')
  assert.equal(childOut.status, 'running')
  assert.equal(typeof childOut.first, 'string')

  // Snapshot: a second container resumes it where the first was, with
  // its own SSH port; the snapshot is kept while the clone exists.
  await m.exec(c.id, ['sh', '-c', 'echo node-warm > /tmp/warm.txt'])
  t = performance.now()
  const snap = await m.snapshotCreate(c.id, 'node-snap')
  timings.snapshotCreate = Math.round(performance.now() - t)
  assert.equal(snap.name, 'node-snap')
  assert.equal(snap.sourceId, c.id)
  assert.equal(snap.sourceName, 'node-life')
  assert.equal(snap.memory, 512)
  assert.equal(snap.disk, false)
  assert.ok(snap.size > 0 && snap.createdAt instanceof Date)
  assert.deepEqual((await m.snapshotList()).map((s) => s.name), ['node-snap'])
  assert.deepEqual((await m.snapshotGet('node-snap')).devices, snap.devices)
  await rejectsWith(m.snapshotCreate(c.id, 'a/b'), 'ERR_VMC_INVALID_INPUT', 'a/b')
  t = performance.now()
  const clone = await m.runSnapshot('node-snap', { name: 'node-clone', detach: true })
  const warm = await m.exec(clone.id, ['cat', '/tmp/warm.txt'])
  timings.runSnapshotToExec = Math.round(performance.now() - t)
  assert.equal(warm.stdout, 'node-warm\n')
  assert.equal(clone.memory, 512)
  assert.equal(clone.snapshot, 'node-snap')
  assert.equal(c.snapshot, undefined)
  assert.notEqual(clone.sshPort, c.sshPort)
  await rejectsWith(m.snapshotRemove('node-snap'), 'ERR_VMC_INVALID_INPUT', 'node-clone')
  await rejectsWith(m.commit(clone.id, join(home, 'clone.qcow2')), 'ERR_VMC_INVALID_INPUT', 'no disk')
  await m.remove(clone.id, { force: true })
  assert.equal((await m.snapshotRemove('node-snap')).name, 'node-snap')
  await rejectsWith(m.runSnapshot('node-snap', { detach: true }), 'ERR_VMC_NOT_FOUND', 'node-snap')

  // A follower left running ends by itself when the container stops.
  const tail = (async () => {
    const seen = []
    for await (const line of m.follow(c.id)) seen.push(line)
    return seen
  })()

  // stop: ACPI power-down, the event loop keeps running meanwhile.
  t = performance.now()
  const stopped = await timerGaps(() => m.stop(c.id, { timeout: 60_000 }))
  timings.stop = Math.round(performance.now() - t)
  timings.stopMaxTimerGap = Math.round(stopped.maxGap)
  assert.equal(stopped.value.status, 'stopped')
  assert.ok(stopped.value.stoppedAt instanceof Date)
  assert.ok(stopped.maxGap < MAX_TIMER_GAP_MS, `timer stalled ${stopped.maxGap} ms during stop`)
  const seen = await tail
  assert.ok(seen.some((l) => l.includes('node-marker-42')), 'the tail saw earlier output')
  assert.ok((await m.logs(c.id)).includes('reboot: Power down'), 'the guest powered off through ACPI')

  await rejectsWith(m.exec(c.id, ['true']), 'ERR_VMC_NOT_RUNNING', c.id)
  await rejectsWith(m.stop(c.id), 'ERR_VMC_NOT_RUNNING', c.id)

  const removed = await m.remove(c.id)
  assert.equal(removed.id, c.id)
  assert.deepEqual(await m.list(), [])
  await rejectsWith(m.get(c.id), 'ERR_VMC_NOT_FOUND', c.id)
})

test('foreground run streams output; a throwing callback is reported, not fatal', { timeout: 900_000 }, async () => {
  const warnings = []
  const onWarning = (w) => warnings.push(w)
  process.on('warning', onWarning)
  const chunks = []
  const boom = new Error('callback boom')
  let calls = 0
  try {
    const t = performance.now()
    const run = m.run(image, {
      name: 'node-fg',
      detach: false,
      memory: 256,
      onOutput: (chunk) => {
        calls++
        chunks.push(chunk)
        if (calls === 1) throw boom
      },
    })
    let settled = false
    run.then(
      () => (settled = true),
      () => (settled = true),
    )
    const text = () => Buffer.concat(chunks).toString('latin1')
    await until(() => settled || text().includes('VMTEST READY'), BOOT_TIMEOUT_S * 1000, 'VMTEST READY in the foreground output')
    timings.foregroundReady = Math.round(performance.now() - t)
    assert.equal(settled, false, 'the foreground run is still going')
    assert.ok(calls > 1, 'the callback kept being called after it threw')
    assert.ok(chunks.every((b) => Buffer.isBuffer(b)))
    const [c] = await m.list()
    assert.equal(c.name, 'node-fg')
    assert.equal(c.status, 'running')
    await m.stop(c.id, { timeout: 60_000 })
    const final = await run
    timings.foregroundTotal = Math.round(performance.now() - t)
    assert.equal(final.id, c.id)
    assert.equal(final.status, 'stopped')
    assert.ok(text().includes('reboot: Power down'), 'output streamed until the VM exited')
    // The log got the same output.
    assert.ok((await m.logs(c.id)).includes('VMTEST READY'))
    await until(() => warnings.length > 0, 5000, 'the warning')
    assert.equal(warnings[0], boom, 'the thrown error was emitted as a process warning')
    await m.remove(c.id)
  } finally {
    process.off('warning', onWarning)
  }
})
