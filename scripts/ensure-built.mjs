#!/usr/bin/env node
// Makes `npm run demo` and `npm test` work on a fresh machine: installs the
// Debian packages that are missing, runs `npm ci` if node_modules is absent,
// and rebuilds when a source is newer than what was built. A no-op otherwise.
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const run = (cmd, args) => execFileSync(cmd, args, { cwd: root, stdio: 'inherit' })

const packages = readFileSync(path.join(root, 'scripts/debian-packages.txt'), 'utf8')
  .split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'))
const installed = (pkg) => spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' }).stdout?.includes('install ok installed')
const missing = packages.filter((p) => !installed(p))
if (missing.length > 0) {
  if (process.getuid?.() !== 0) {
    console.error(`ensure-built: missing Debian packages (${missing.join(' ')}); run as root or install them`)
    process.exit(1)
  }
  console.error(`ensure-built: installing ${missing.join(' ')}`)
  run('apt-get', ['update'])
  execFileSync('apt-get', ['install', '-y', '--no-install-recommends', ...missing], {
    stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  })
}

if (!existsSync(path.join(root, 'node_modules/.package-lock.json'))) run('npm', ['ci'])

function newest(dir) {
  let t = 0
  for (const e of readdirSync(path.join(root, dir), { withFileTypes: true })) {
    const p = path.join(dir, e.name)
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(path.join(root, p)).mtimeMs)
  }
  return t
}
const mtime = (f) => (existsSync(path.join(root, f)) ? statSync(path.join(root, f)).mtimeMs : 0)
const addon = mtime('build/Release/syncookie.node')
const dist = mtime('dist/index.js')
if (addon === 0 || Math.max(newest('bpf'), newest('binding'), newest('cmake'), mtime('CMakeLists.txt')) > addon) run('npm', ['run', 'build:addon'])
if (dist === 0 || newest('lib') > dist) run('npm', ['run', 'build:ts'])
