/**
 * Secrets never leave the agent: not on stdout/stderr/console, not in an error (message,
 * stack, properties, causes), not in what util.inspect/JSON/String show of the agent; and any
 * BPF object the agent pins is mode 0600.
 *
 * The agent pins nothing today (tcx links live in the process; see runtime-crash.test.ts): the
 * pin check walks every bpffs mounted where the agent runs and requires every file there that
 * appeared during the test to be 0600, so it holds for whatever pinning comes later.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import { randomBytes } from 'node:crypto'
import { beforeAll, expect, it } from 'vitest'
import { loadHostileOps } from '../helpers/hostile.js'
import { describeKernel, registerCleanup, requireDist, setupKernelEnv, type KernelEnv } from '../helpers/kernel.js'

const PREFIX = 'sca-sx'

/** Every way a 16-byte key could show up in text. */
function renderings(key: Buffer): string[] {
  const dec = [...key].map(String)
  const hex = [...key].map((b) => b.toString(16).padStart(2, '0'))
  const out = [
    key.toString('hex'),
    key.toString('hex').toUpperCase(),
    key.toString('base64').replace(/=+$/, ''),
    key.toString('base64url'),
    hex.slice(0, 6).join(' '), // <Buffer de ad be ...>
    dec.slice(0, 6).join(','), // Uint8Array.prototype.toString
    dec.slice(0, 6).join(', '), // util.inspect of a Uint8Array
    key.readBigUInt64LE(0).toString(), // k0 as the program reads it
    key.readBigUInt64LE(8).toString(),
    key.readBigUInt64LE(0).toString(16),
  ]
  // any 6 consecutive key bytes in hex
  for (let i = 0; i + 6 <= key.length; i++) out.push(key.subarray(i, i + 6).toString('hex'))
  return out
}

function leaks(text: string, key: Buffer): string[] {
  const lower = text.toLowerCase()
  return renderings(key).filter((r) => lower.includes(r.toLowerCase()))
}

/** Files on every bpffs visible to this process (the worker shares the test's mount namespace). */
function bpffsFiles(): { file: string; mode: number; ctimeMs: number }[] {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' - '))
    .filter((parts) => parts[1]?.startsWith('bpf '))
    .map((parts) => parts[0]!.split(' ')[4]!)
  const out: { file: string; mode: number; ctimeMs: number }[] = []
  const walk = (dir: string, depth: number): void => {
    if (depth > 8) return
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name)
      if (e.isDirectory()) walk(p, depth + 1)
      else {
        const st = statSync(p)
        out.push({ file: p, mode: st.mode & 0o777, ctimeMs: st.ctimeMs })
      }
    }
  }
  for (const m of mounts) walk(m, 0)
  return out
}

interface Exposure {
  output: string
  errors: string[]
  inspected: string[]
}

describeKernel('secrets stay secret, pins are private', () => {
  let env: KernelEnv
  registerCleanup()

  beforeAll(async () => {
    requireDist()
    env = await setupKernelEnv(PREFIX)
    await loadHostileOps(env.server)
  })

  it('the self-check finds a key in each rendering it looks for', () => {
    const key = randomBytes(16)
    expect(leaks(`key ${key.toString('hex')}`, key)).not.toEqual([])
    expect(leaks(`<Buffer ${[...key].map((b) => b.toString(16).padStart(2, '0')).join(' ')}>`, key)).not.toEqual([])
    expect(leaks(`Uint8Array(16) [ ${[...key].join(', ')} ]`, key)).not.toEqual([])
    expect(leaks('nothing here', key)).toEqual([])
  })

  async function expose(): Promise<{ key: Buffer; r: Exposure; started: number; pins0: ReturnType<typeof bpffsFiles> }> {
    const key = randomBytes(16)
    const started = Date.now()
    const pins0 = bpffsFiles()
    const r = await env.server.call<Exposure>('hostile.exposure', { keyHex: key.toString('hex'), ifname: env.topo.server.dev, missing: 'sca-sx-nosuch' })
    return { key, r, started, pins0 }
  }

  /** Where the key showed up: one entry per leaking source, with the renderings found. */
  function leakingSources(key: Buffer, r: Exposure, skip: (label: string) => boolean): string[] {
    const out: string[] = []
    const check = (what: string, text: string): void => {
      const found = leaks(text, key)
      if (found.length > 0) out.push(`${what}: ${text.slice(0, 300)} [found ${found.length} rendering(s)]`)
    }
    check('stdout/stderr/console', r.output)
    for (const e of r.errors) if (!skip(e)) check('error', e)
    for (const i of r.inspected) check('inspection', i)
    return out
  }

  const KEY_AS_STRING = 'rotateSecret(secret as a hex string):'

  it('no output, error or inspection of the agent shows the secret; pins are 0600', async () => {
    const { key, r, started, pins0 } = await expose()
    expect(r.errors.length, 'the scenario provoked errors').toBeGreaterThanOrEqual(10)
    expect(leakingSources(key, r, (e) => e.startsWith(KEY_AS_STRING))).toEqual([])
    const created = bpffsFiles().filter((f) => f.ctimeMs >= started - 1000 && !pins0.some((p) => p.file === f.file))
    for (const f of created) expect(f.mode.toString(8), `pinned ${f.file}`).toBe('600')
  })

  // rotateSecret(key) with the key as a hex string (an easy mistake when it comes from a file
  // or an environment variable) once echoed the key in its TypeError (found by this test).
  it('rotateSecret with the key as a hex string does not echo it', async () => {
    const { key, r } = await expose()
    const e = r.errors.find((x) => x.startsWith(KEY_AS_STRING))
    expect(e, 'the case ran and rejected').toBeDefined()
    expect(leaks(e!, key), e!.slice(0, 300)).toEqual([])
  })
})
