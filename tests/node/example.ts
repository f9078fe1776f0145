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
  devenv,
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
    await manager.waitReady(c.id, { timeout: 240_000 })
    const out: ExecResult = await manager.exec(c.id, ['uname', '-a'])
    console.log(out.exitCode, out.stdout.trim(), out.stderr)

    for await (const line of manager.follow(c.id)) {
      const l: LogLine = line
      if (l.includes('VMTEST READY')) break
    }
    const stopped = await manager.stop(c.id, { timeout: 10_000 })
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

/** Installs the dev image with a progress line, then boots, tests, serves. */
export async function devDemo(project: string): Promise<number> {
  const serveCmd: string = await devenv.detectServeCommand(project)
  const testCmd: string | null = await devenv.detectTestCommand(project)
  const config: devenv.TestConfig | null = await devenv.loadTestConfig(project)
  console.log(serveCmd, testCmd ?? 'no tests', config?.commands.map((c) => c.name), config?.env['APP_ENV'])
  // @ts-expect-error: detectTestCommand may resolve with null
  const bad: string = await devenv.detectTestCommand(project)
  void bad

  const dev = new devenv.DevOps({ home: '/tmp/vmcontainer-demo' })
  const report: devenv.InstallReport = await dev.install({
    onProgress: (downloaded: number, total: number | null) => {
      const pct = total === null ? '?' : ((100 * downloaded) / total).toFixed(1)
      process.stderr.write(`\r${downloaded} bytes (${pct}%)`)
    },
  })
  // @ts-expect-error: total may be null
  await dev.install({ onProgress: (_d: number, total: number) => void total })
  console.log(report.version, report.sha256, report.alreadyInstalled)

  const update: devenv.UpdateInfo = await dev.checkUpdate()
  if (update.hasUpdate) {
    const updated: devenv.InstallReport | null = await dev.update()
    console.log(`${update.current} -> ${update.latest}: ${updated?.path}`)
  }

  const c: Container = await dev.boot({ memory: 4096, cpus: 2, project, timeout: 120_000 })
  const s: devenv.DevStatus = await dev.status()
  console.log(c.id, s.running, s.imageVersion, s.containerId, s.memory, s.cpus, s.sshPort, s.uptime)
  if (await dev.isRunning()) {
    const testExit: number = await dev.test({ project, name: 'unit' })
    console.log(await dev.testCommand({ project }), testExit)
    await dev.shell(['uname', '-a'], { noAgent: true })
    // @ts-expect-error: shell takes an argv, not a command line
    await dev.shell('uname -a')
    const stop = new AbortController()
    setTimeout(() => stop.abort(), 60_000)
    const served: number = await dev.serve({ project, port: 8080, guestPort: 8000, signal: stop.signal })
    console.log(await dev.serveCommand({ project }), served)
  }
  const stopped: Container = await dev.stop()
  return stopped.exitCode ?? 0
}
