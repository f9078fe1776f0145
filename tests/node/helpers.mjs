// Shared helpers of the Node test suite.
import { execFileSync, spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

export const here = dirname(fileURLToPath(import.meta.url))
export const repo = resolve(here, '../..')

/** The test guest directory (built or taken from cache by tests/guest/build.sh). */
export function guest() {
  if (process.env.VMCONTAINER_TEST_GUEST) return process.env.VMCONTAINER_TEST_GUEST
  const out = execFileSync('bash', [join(repo, 'tests/guest/build.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  return out.trim().split('\n').pop().trim()
}

/** A fresh, short (Unix socket paths are limited) VMCONTAINER_HOME. */
export function tempHome() {
  return mkdtempSync('/tmp/vmcn-')
}

/** A go-container-style record. */
export function record(id, extra = {}) {
  return {
    id,
    name: id,
    image: '/images/x.iso',
    status: 'stopped',
    pid: 0,
    started_at: '2025-01-01T00:00:00Z',
    ports: { 8080: 80 },
    memory: 1024,
    cpus: 1,
    ...extra,
  }
}

/** Writes `containers.json` under `home` with `records`. */
export function writeState(home, records) {
  const containers = Object.fromEntries(records.map((r) => [r.id, r]))
  writeFileSync(join(home, 'containers.json'), JSON.stringify({ containers }), { mode: 0o600 })
}

/** Writes the serial log of `id`. */
export function writeLog(home, id, text) {
  mkdirSync(join(home, 'logs'), { recursive: true, mode: 0o700 })
  writeFileSync(join(home, 'logs', `${id}.log`), text)
}

/** Polls `fn` until it returns a truthy value or `ms` pass. */
export async function until(fn, ms, what) {
  const deadline = Date.now() + ms
  for (;;) {
    const v = await fn()
    if (v) return v
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

/**
 * Runs `node args...` and resolves with its exit status, output and run
 * time; kills it (and reports `killed`) after `timeoutMs`.
 */
export function runNode(args, { env = {}, timeoutMs = 60_000, cwd = here } = {}) {
  return new Promise((resolveRun, reject) => {
    const started = Date.now()
    const child = spawn(process.execPath, args, {
      cwd,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    let killed = false
    const timer = setTimeout(() => {
      killed = true
      child.kill('SIGKILL')
    }, timeoutMs)
    child.on('error', reject)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolveRun({ code, signal, stdout, stderr, killed, ms: Date.now() - started })
    })
  })
}

/**
 * Records how late a 20 ms interval timer fires while `work` runs; a
 * blocked event loop shows up as one long gap.
 */
export async function timerGaps(work) {
  const period = 20
  let last = performance.now()
  let maxGap = 0
  let ticks = 0
  const t = setInterval(() => {
    const now = performance.now()
    maxGap = Math.max(maxGap, now - last)
    last = now
    ticks++
  }, period)
  const started = performance.now()
  try {
    const value = await work()
    const now = performance.now()
    maxGap = Math.max(maxGap, now - last)
    return { value, maxGap, ticks, ms: now - started }
  } finally {
    clearInterval(t)
  }
}

/** Asserts that `promise` rejects with an Error whose `code` is `code`. */
export async function rejectsWith(promise, code, messagePart) {
  let err
  try {
    await promise
  } catch (e) {
    err = e
  }
  if (!(err instanceof Error)) throw new Error(`expected a rejection with ${code}, got ${err === undefined ? 'success' : String(err)}`)
  if (err.code !== code) throw new Error(`expected code ${code}, got ${err.code}: ${err.message}`)
  if (messagePart && !err.message.includes(messagePart)) throw new Error(`message ${JSON.stringify(err.message)} lacks ${JSON.stringify(messagePart)}`)
  return err
}

/**
 * A loopback HTTP server laid out like the dev image CDN:
 * `<url>/manifest.json` and `<url>/<image>`. `state` is live: change
 * `version`, `image` (the bytes) or `sha256` (what the manifest publishes;
 * default the bytes' real hash) between requests. The image is sent in
 * `chunk`-byte pieces `delay` ms apart, so a download reports progress
 * several times. Faults: `imageStatus` (e.g. 404) answers the image with
 * that status instead, `cutAfter` drops the connection after that many
 * bytes of it. Resolves with `{ url, state, requests, close }`.
 */
export async function startCdn({ name, image, version = '1.2.3', chunk = 64 * 1024, delay = 2 }) {
  const { createServer } = await import('node:http')
  const { createHash } = await import('node:crypto')
  const state = { version, image, sha256: undefined, chunk, delay, imageStatus: undefined, cutAfter: undefined }
  const requests = []
  const server = createServer(async (req, res) => {
    requests.push(req.url)
    if (req.url === '/images/manifest.json') {
      const sha256 = state.sha256 ?? createHash('sha256').update(state.image).digest('hex')
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ version: state.version, images: { [name]: { sha256, size: state.image.length } } }))
      return
    }
    if (req.url === `/images/${name}`) {
      if (state.imageStatus !== undefined) {
        res.writeHead(state.imageStatus).end('no image here')
        return
      }
      const bytes = state.image
      const end = Math.min(state.cutAfter ?? bytes.length, bytes.length)
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes.length })
      for (let at = 0; at < end; at += state.chunk) {
        if (!res.write(bytes.subarray(at, Math.min(at + state.chunk, end)))) await new Promise((r) => res.once('drain', r))
        await new Promise((r) => setTimeout(r, state.delay))
      }
      if (end < bytes.length) res.destroy()
      else res.end()
      return
    }
    res.writeHead(404).end('not found')
  })
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  const url = `http://127.0.0.1:${server.address().port}/images`
  const close = () =>
    new Promise((r) => {
      server.closeAllConnections()
      server.close(() => r())
    })
  return { url, state, requests, close }
}

/** Writes `config.yaml` under `home` that takes dev images from the CDN at `url`. */
export function writeCdnConfig(home, url) {
  writeFileSync(join(home, 'config.yaml'), `version: 1\nimages:\n  source: cdn\n  cdn:\n    url: ${url}\n`)
}

/**
 * A real OCI registry: Debian's docker-registry (the CNCF distribution
 * registry) on a loopback port with filesystem storage under `dir`.
 * Resolves to `{ addr: '127.0.0.1:PORT', stop() }`; rejects (never skips)
 * when docker-registry is missing (scripts/deps.sh installs it).
 */
export async function startRegistry(dir) {
  const config = join(dir, 'config.yml')
  writeFileSync(
    config,
    `version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: ${join(dir, 'data')}\nhttp:\n  addr: 127.0.0.1:0\n`,
  )
  const child = spawn('docker-registry', ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'] })
  const addr = await new Promise((resolveAddr, reject) => {
    let log = ''
    const timer = setTimeout(() => reject(new Error(`docker-registry did not start: ${log}`)), 30_000)
    child.on('error', (e) => {
      clearTimeout(timer)
      reject(new Error(`docker-registry is not installed (apt-get install docker-registry): ${e.message}`))
    })
    child.stderr.setEncoding('utf8')
    child.stderr.on('data', (chunk) => {
      log += chunk
      const m = /listening on (127\.0\.0\.1:\d+)/.exec(log)
      if (m) {
        clearTimeout(timer)
        resolveAddr(m[1])
      }
    })
  })
  return {
    addr,
    stop() {
      child.kill('SIGKILL')
    },
  }
}
