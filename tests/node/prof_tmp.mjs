import { createRequire } from 'node:module'
import { rmSync } from 'node:fs'
import { record, tempHome, writeState } from '/work/main/tests/node/helpers.mjs'
const require = createRequire('/work/main/tests/node/x.js')
const addon = require('@vmcontainer/linux-x64-gnu')
const nativeList = addon.Manager.prototype.list
async function t(label, f) {
  for (let i = 0; i < 20; i++) await f()
  const us = []
  for (let i = 0; i < 200; i++) { const s = process.hrtime.bigint(); await f(); us.push(Number(process.hrtime.bigint() - s) / 1000) }
  us.sort((a, b) => a - b); console.log(label, us[100].toFixed(0))
}
for (const n of [1000]) {
  const home = tempHome()
  const records = []
  for (let i = 0; i < n; i++) {
    const id = i.toString(16).padStart(8, '0')
    records.push(record(id, { name: `c${i}`, image: `/images/guest-${i % 7}.qcow2`, status: i % 3 ? 'stopped' : 'error',
      started_at: new Date(Date.UTC(2025,0,1)+i*1000).toISOString(), ports: { [10000 + i]: 80 }, ssh_port: 20000 + i,
      ssh_key: '/keys/id_ed25519', format: 'qcow2', hypervisor: 'qemu', accel: 'tcg' }))
  }
  writeState(home, records)
  const raw = new addon.Manager({ home })
  await t(`native list n=${n}`, () => nativeList.call(raw))
  rmSync(home, { recursive: true, force: true })
}
