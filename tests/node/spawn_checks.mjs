// Checks of Manager.spawn against a running container (used by
// vm.test.mjs on its shared VM).
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { pipeline } from 'node:stream/promises'
import { Readable } from 'node:stream'

import { rejectsWith } from './helpers.mjs'

export async function spawnChecks(m, id) {
  // Streamed: the first chunk arrives before the sleep ends.
  let p = await m.spawn(id, ['sh', '-c', 'echo first; sleep 3; echo second'])
  const t0 = performance.now()
  const chunks = []
  let firstAt
  for await (const chunk of p.stdout) {
    firstAt ??= performance.now() - t0
    chunks.push(chunk)
  }
  assert.equal(Buffer.concat(chunks).toString(), 'first\nsecond\n')
  assert.ok(performance.now() - t0 - firstAt >= 2000, `first chunk at ${firstAt} ms: not streamed`)
  assert.equal(await p.wait(), 0)

  // 1 MiB through stdin (a pipeline: backpressure), stderr apart, env, cwd.
  const data = randomBytes(1 << 20)
  p = await m.spawn(id, ['sh', '-c', 'md5sum; echo "$GREETING $(pwd)" >&2; exit 6'], {
    env: { GREETING: "it's $HOME" },
    cwd: '/tmp',
  })
  const out = []
  const err = []
  p.stdout.on('data', (c) => out.push(c))
  p.stderr.on('data', (c) => err.push(c))
  await pipeline(Readable.from([data.subarray(0, 1 << 19), data.subarray(1 << 19)]), p.stdin)
  await Promise.all([once(p.stdout, 'end'), once(p.stderr, 'end')])
  assert.equal(await p.wait(), 6)
  assert.equal(Buffer.concat(out).toString().split(' ')[0], createHash('md5').update(data).digest('hex'))
  assert.equal(Buffer.concat(err).toString(), "it's $HOME /tmp\n")

  // kill: 128 + the signal; a timeout rejects with ERR_VMC_TIMEOUT.
  p = await m.spawn(id, ['sleep', '300'])
  await p.kill('TERM')
  assert.equal(await p.wait(), 143)
  p = await m.spawn(id, ['sleep', '300'], { timeout: 1500 })
  await rejectsWith(p.wait(), 'ERR_VMC_TIMEOUT', 'sleep')
  // A terminal.
  p = await m.spawn(id, ['tty'], { tty: true })
  const tty = []
  for await (const c of p.stdout) tty.push(c)
  assert.match(Buffer.concat(tty).toString(), /\/dev\/pts\//)
  assert.equal(await p.wait(), 0)
  await rejectsWith(m.spawn(id, ['true'], { env: { 'A B': 'x' } }), 'ERR_VMC_INVALID_INPUT', 'A B')
}
