// Packs the Node module the napi-rs way (called by scripts/package.sh):
//
//   vmcontainer-VERSION.tgz                   the main package `vmcontainer`:
//       JavaScript loader, typings, and one optionalDependency per platform
//       package, pinned to VERSION; no install script, no addon.
//   vmcontainer-PLATFORM-VERSION.tgz          `@vmcontainer/PLATFORM`
//       (e.g. @vmcontainer/linux-x64-gnu): the prebuilt addon, with `os`,
//       `cpu` and `libc` so npm installs only the one that fits.
//
// The platform list of the main package is `napi.targets` in
// bindings-node/package.json: every platform a release publishes, whichever
// machine built it. The version comes from the workspace (scripts/version.sh)
// and must equal bindings-node/package.json's.
//
//   node scripts/npm-pack.mjs --version V --triple TRIPLE --addon FILE --out DIR
import { execFileSync } from 'node:child_process'
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const SCOPE = '@vmcontainer'
const repo = join(dirname(fileURLToPath(import.meta.url)), '..')
const src = join(repo, 'bindings-node')

const { values: args } = parseArgs({
  options: {
    version: { type: 'string' },
    triple: { type: 'string' },
    addon: { type: 'string' },
    out: { type: 'string' },
  },
})
for (const name of ['version', 'triple', 'addon', 'out']) {
  if (!args[name]) fail(`--${name} is required`)
}

function fail(message) {
  console.error(`npm-pack: ${message}`)
  process.exit(1)
}

/** napi-rs's platform name for a Rust target triple, with npm's os/cpu/libc. */
function platformOf(triple) {
  const [arch, , os, abi] = triple.split('-')
  const cpu = { x86_64: 'x64', aarch64: 'arm64', i686: 'ia32', armv7: 'arm', riscv64gc: 'riscv64' }[arch]
  if (!cpu) fail(`no npm cpu name for the target ${triple}`)
  if (os === 'linux') {
    const libc = abi && abi.startsWith('musl') ? 'musl' : 'gnu'
    return { name: `linux-${cpu}-${libc}`, os: 'linux', cpu, libc: libc === 'musl' ? 'musl' : 'glibc' }
  }
  if (os === 'darwin') return { name: `darwin-${cpu}`, os: 'darwin', cpu }
  if (os === 'windows') return { name: `win32-${cpu}-msvc`, os: 'win32', cpu }
  fail(`no npm platform for the target ${triple}`)
}

const source = JSON.parse(readFileSync(join(src, 'package.json'), 'utf8'))
if (source.version !== args.version) {
  fail(
    `bindings-node/package.json says ${source.version}, the workspace ${args.version}: ` +
      `run scripts/version.sh --set ${args.version}`,
  )
}
const targets = source.napi?.targets ?? []
const platform = platformOf(args.triple)
if (!targets.includes(args.triple)) {
  console.error(
    `npm-pack: warning: ${args.triple} is not in napi.targets of bindings-node/package.json, ` +
      `so the main package will not install ${SCOPE}/${platform.name}`,
  )
}

function pack(dir) {
  const out = execFileSync('npm', ['pack', '--silent', '--pack-destination', args.out], {
    cwd: dir,
    encoding: 'utf8',
  })
  const file = out.trim().split('\n').pop()
  console.log(join(args.out, file))
}

const stage = mkdtempSync(join(tmpdir(), 'vmc-npm-'))
try {
  mkdirSync(args.out, { recursive: true })

  // The platform package: the addon and a package.json, nothing to run.
  const plat = join(stage, platform.name)
  mkdirSync(plat)
  const addon = `vmcontainer.${platform.name}.node`
  copyFileSync(args.addon, join(plat, addon))
  const platPkg = {
    name: `${SCOPE}/${platform.name}`,
    version: args.version,
    description: `The prebuilt ${platform.name} addon of vmcontainer (installed by the vmcontainer package)`,
    license: source.license,
    main: addon,
    files: [addon],
    os: [platform.os],
    cpu: [platform.cpu],
    ...(platform.libc ? { libc: [platform.libc] } : {}),
    engines: source.engines,
  }
  writeFileSync(join(plat, 'package.json'), JSON.stringify(platPkg, null, 2) + '\n')
  writeFileSync(
    join(plat, 'README.md'),
    `# ${platPkg.name}\n\nThe native addon of the \`vmcontainer\` package for ${platform.name}. ` +
      `Install \`vmcontainer\`, which depends on it.\n`,
  )
  pack(plat)

  // The main package: loader and typings; the addon comes from the above.
  const main = join(stage, 'vmcontainer')
  mkdirSync(main)
  const files = ['index.js', 'index.mjs', 'index.d.ts']
  for (const f of [...files, 'README.md']) copyFileSync(join(src, f), join(main, f))
  const { scripts, devDependencies, napi, ...rest } = source
  const mainPkg = {
    ...rest,
    files,
    optionalDependencies: Object.fromEntries(
      targets.map((t) => [`${SCOPE}/${platformOf(t).name}`, args.version]),
    ),
  }
  writeFileSync(join(main, 'package.json'), JSON.stringify(mainPkg, null, 2) + '\n')
  pack(main)
} finally {
  rmSync(stage, { recursive: true, force: true })
}
