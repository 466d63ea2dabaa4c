#!/usr/bin/env node
// For scripts/test-package.sh: turns the README's API example (the first ```ts
// block after "## API", from the README the installed package ships) into two
// programs, example.mts (ESM import) and example.cts (CommonJS require), for
// tsc to check against the installed package's types and for node to run
// inside the server network namespace. The example stays as written; around
// it: `key`, a listener on its port, one connect from the client namespace
// right after attach(), and a check that stats() counted it as ackAccepted.
//   node scripts/readme-example.mjs README.md OUTDIR
import { readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'

const [readme, outDir] = process.argv.slice(2)
const text = readFileSync(readme, 'utf8')
const block = /^## API\n[\s\S]*?^```ts\n([\s\S]*?)^```$/m.exec(text)?.[1]
if (!block) throw new Error(`${readme}: no \`\`\`ts block after "## API"`)

const lines = block.split('\n')
const imports = lines.filter((l) => l.startsWith('import '))
const body = lines.filter((l) => !l.startsWith('import '))
const attach = body.findIndex((l) => /^await agent\.attach\(/.test(l))
if (attach < 0 || !body.some((l) => /^const s = await agent\.stats\(\)/.test(l))) {
  throw new Error(`${readme}: the API example no longer has \`await agent.attach(...)\` and \`const s = await agent.stats()\` lines`)
}
body.splice(attach + 1, 0, 'await connectOnce() // test-package: one handshake through the agent')

const harnessImports = [
  "import { execFile } from 'node:child_process'",
  "import { randomBytes } from 'node:crypto'",
  "import { once } from 'node:events'",
  "import { createServer } from 'node:net'",
  "import { promisify } from 'node:util'",
]
const before = `
const key: Uint8Array = new Uint8Array(randomBytes(16))
const server = createServer((socket) => socket.end()).listen(8080, '192.0.2.1')
await once(server, 'listening')
async function connectOnce(): Promise<void> {
  const accepted = once(server, 'connection')
  const client = "const c = require('node:net').connect(8080, '192.0.2.1', () => { c.destroy(); process.exit(0) }); c.on('error', (e) => { console.error(e.message); process.exit(1) })"
  await promisify(execFile)('nsenter', [\`--net=/run/netns/\${process.env.SCPKG_CLIENT_NETNS}\`, process.execPath, '-e', client], { timeout: 20_000 })
  await accepted
}
`
const after = `
server.close()
console.log(\`\${process.env.SCPKG_STYLE}: ackAccepted=\${s.ackAccepted} synAckSent=\${s.synAckSent}\`)
if (s.ackAccepted < 1n) throw new Error('the connect was not counted as ackAccepted')
`

// ESM: top-level await as in the README.
writeFileSync(path.join(outDir, 'example.mts'), [...imports, ...harnessImports, before, ...body, after].join('\n'))
// CommonJS: the same statements inside an async function.
const indent = (s) => s.split('\n').map((l) => (l ? `  ${l}` : l)).join('\n')
writeFileSync(
  path.join(outDir, 'example.cts'),
  [...imports, ...harnessImports, '', 'async function main(): Promise<void> {', indent([before, ...body, after].join('\n')), '}',
    'main().catch((err) => { console.error(err); process.exitCode = 1 })', ''].join('\n'),
)
