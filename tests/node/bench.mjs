// `await manager.list()` with 1,000 containers in a synthetic state file,
// against the same call in Rust (core/examples/list_bench.rs).
//
//   node bench.mjs [CONTAINERS] [RUNS]
import { execFileSync } from 'node:child_process'
import { rmSync } from 'node:fs'
import { join } from 'node:path'

import { Manager } from 'vmcontainer'

import { record, repo, tempHome, writeState } from './helpers.mjs'

const n = Number(process.argv[2] ?? 1000)
const runs = Number(process.argv[3] ?? 200)

const home = tempHome()
try {
  const records = []
  for (let i = 0; i < n; i++) {
    const id = i.toString(16).padStart(8, '0')
    const started = new Date(Date.UTC(2025, 0, 1) + i * 1000).toISOString()
    records.push(
      record(id, {
        name: `c${i}`,
        image: `/images/guest-${i % 7}.qcow2`,
        status: i % 3 ? 'stopped' : 'error',
        started_at: started,
        ports: { [10000 + i]: 80 },
        ssh_port: 20000 + i,
        ssh_key: '/keys/id_ed25519',
        format: 'qcow2',
        hypervisor: 'qemu',
        accel: 'tcg',
      }),
    )
  }
  writeState(home, records)

  const m = new Manager({ home })
  const first = await m.list()
  if (first.length !== n) throw new Error(`listed ${first.length}, wrote ${n}`)
  for (let i = 0; i < 10; i++) await m.list()
  execFileSync('cargo', ['build', '--quiet', '--release', '-p', 'vmcontainer', '--example', 'list_bench'], {
    cwd: repo,
    stdio: ['ignore', 'inherit', 'inherit'],
  })
  const target = process.env.CARGO_TARGET_DIR ?? join(repo, 'target')
  const exe = join(target, 'release', 'examples', 'list_bench')
  // In blocks, each Node block followed by the Rust program for as many
  // runs: this machine's speed drifts within seconds, so a Rust figure
  // taken once, after all the Node runs, compared different moments.
  const blocks = 5
  const per = Math.ceil(runs / blocks)
  const us = []
  const rusts = []
  for (let b = 0; b < blocks; b++) {
    for (let i = 0; i < per; i++) {
      const t = process.hrtime.bigint()
      const v = await m.list()
      us.push(Number(process.hrtime.bigint() - t) / 1000)
      if (v.length !== n) throw new Error('short list')
    }
    const out = execFileSync(exe, [home, String(per)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
    rusts.push(JSON.parse(out.trim().split('\n').pop()))
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1]
  const node = {
    median_us: median(us),
    mean_us: us.reduce((a, b) => a + b, 0) / us.length,
    min_us: Math.min(...us),
  }
  const rust = {
    median_us: median(rusts.map((r) => r.median_us)),
    mean_us: rusts.reduce((a, r) => a + r.mean_us, 0) / rusts.length,
    min_us: Math.min(...rusts.map((r) => r.min_us)),
  }

  const f = (x) => x.toFixed(0).padStart(8)
  console.log(`list() of ${n} containers, ${per * blocks} runs in ${blocks} blocks, Rust between them (microseconds; Rust: median of block medians)`)
  console.log(`           median     mean      min`)
  console.log(`rust     ${f(rust.median_us)} ${f(rust.mean_us)} ${f(rust.min_us)}`)
  console.log(`node     ${f(node.median_us)} ${f(node.mean_us)} ${f(node.min_us)}`)
  console.log(`ratio node/rust (median): ${(node.median_us / rust.median_us).toFixed(2)}`)
} finally {
  rmSync(home, { recursive: true, force: true })
}
