// `await manager.list()` with 1,000 containers in a synthetic state file,
// against the same call in Rust (core/examples/list_bench.rs).
//
//   node bench.mjs [CONTAINERS] [RUNS]
import { execFileSync } from 'node:child_process'
import { rmSync } from 'node:fs'

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
  const us = []
  for (let i = 0; i < runs; i++) {
    const t = process.hrtime.bigint()
    const v = await m.list()
    us.push(Number(process.hrtime.bigint() - t) / 1000)
    if (v.length !== n) throw new Error('short list')
  }
  us.sort((a, b) => a - b)
  const node = {
    median_us: us[us.length >> 1],
    mean_us: us.reduce((a, b) => a + b, 0) / us.length,
    min_us: us[0],
  }

  const out = execFileSync(
    'cargo',
    ['run', '--quiet', '--release', '-p', 'vmcontainer', '--example', 'list_bench', '--', home, String(runs)],
    { cwd: repo, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
  )
  const rust = JSON.parse(out.trim().split('\n').pop())

  const f = (x) => x.toFixed(0).padStart(8)
  console.log(`list() of ${n} containers, ${runs} runs (microseconds)`)
  console.log(`           median     mean      min`)
  console.log(`rust     ${f(rust.median_us)} ${f(rust.mean_us)} ${f(rust.min_us)}`)
  console.log(`node     ${f(node.median_us)} ${f(node.mean_us)} ${f(node.min_us)}`)
  console.log(`ratio node/rust (median): ${(node.median_us / rust.median_us).toFixed(2)}`)
} finally {
  rmSync(home, { recursive: true, force: true })
}
