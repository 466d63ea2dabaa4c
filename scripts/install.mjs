#!/usr/bin/env node
// npm's install hook. Uses the prebuilt addon (prebuilds/linux-x64) or an
// existing build when it loads here, and builds from source with cmake-js
// otherwise (the toolchain that needs: README, "Installing from npm").
//   PREBUILDS_ONLY=1                    never build: no loadable prebuild is an error
//   npm install --build-from-source     always build
import { spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const require = createRequire(import.meta.url)
const say = (msg) => console.error(`syncookie-agent: ${msg}`)

if (process.env.npm_config_build_from_source === 'true') {
  say('--build-from-source: building the addon')
} else {
  try {
    const file = require('node-gyp-build').resolve(root)
    require(file)
    say(`using ${path.relative(root, file)}`)
    process.exit(0)
  } catch (err) {
    const reason = String(err instanceof Error ? err.message : err).split('\n')[0]
    if (process.env.PREBUILDS_ONLY) {
      say(`PREBUILDS_ONLY is set and no prebuilt addon loads here: ${reason}`)
      process.exit(1)
    }
    say(`no prebuilt addon loads here (${reason}): building from source`)
  }
}

const cmakeJs = path.join(path.dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js')
const build = spawnSync(process.execPath, [cmakeJs, 'compile'], { cwd: root, stdio: 'inherit' })
process.exit(build.status ?? 1)
