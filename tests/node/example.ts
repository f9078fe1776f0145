// Typed use of the vmcontainer Node module. Type-checked by run.sh with
// `tsc --noEmit --strict`; the @ts-expect-error lines fail the check if a
// declaration ever loosens (e.g. status becoming a plain string).
import {
  Manager,
  applyVariables,
  detectHypervisor,
  detectImageFormat,
  extractVariables,
  listTemplates,
  type Container,
  type ContainerStatus,
  type ErrorCode,
  type ExecResult,
  type ImageFormat,
  type LogLine,
} from 'vmcontainer'

/** Boots `image`, runs a command, follows the log briefly, cleans up. */
export async function demo(image: string, key: string): Promise<void> {
  const format: ImageFormat = await detectImageFormat(image)
  console.log(`hypervisor ${detectHypervisor()}, image format ${format}`)

  const manager = new Manager({ home: '/tmp/vmcontainer-demo' })
  const c: Container = await manager.run(image, {
    name: 'demo',
    detach: true,
    memory: 512,
    cpus: 1,
    ports: { 8080: 80 },
    sshKey: key,
  })
  try {
    await manager.waitReady(c.id, { timeout: 240 })
    const out: ExecResult = await manager.exec(c.id, ['uname', '-a'])
    console.log(out.exitCode, out.stdout.trim(), out.stderr)

    for await (const line of manager.follow(c.id)) {
      const l: LogLine = line
      if (l.includes('VMTEST READY')) break
    }
    const stopped = await manager.stop(c.id, { timeout: 10 })
    const status: ContainerStatus = stopped.status
    if (status === 'stopped' || status === 'error') console.log(`stopped at ${stopped.stoppedAt?.toISOString()}`)
    // @ts-expect-error: 'paused' is not a status
    if (status === 'paused') console.log('impossible')
  } catch (e) {
    const code = (e as Error & { code?: ErrorCode }).code
    if (code === 'ERR_VMC_TIMEOUT') console.error('guest did not come up')
    // @ts-expect-error: not an error code
    if (code === 'ERR_SOMETHING_ELSE') console.error('impossible')
    throw e
  } finally {
    await manager.remove(c.id, { force: true })
  }

  for (const c of await manager.list()) console.log(c.id, c.name, c.status, c.startedAt.toISOString())
  // @ts-expect-error: formats are a closed set
  const bad: ImageFormat = 'vdi'
  void bad

  const tpl = (await listTemplates()).map((t) => t.name)
  const { required, optional } = extractVariables('${A} ${B:-x}')
  console.log(tpl, required.join(','), optional['B'], applyVariables('${A}', { A: '1' }))

  const foreground = await manager.run(image, {
    memory: 256,
    onOutput: (chunk: Buffer) => process.stdout.write(chunk),
  })
  console.log(foreground.exitCode)
}
