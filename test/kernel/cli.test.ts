/**
 * The CLI as an operator runs it: inside the server namespace, protecting a port, rotating from
 * a key file, serving Prometheus metrics on the namespace's loopback, and leaving nothing
 * attached after SIGTERM.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { tcxIngress } from '../helpers/bpf.js'
import { poll } from '../helpers/exec.js'
import { describeKernel, registerCleanup, requireDist, setupKernelEnv, type KernelEnv } from '../helpers/kernel.js'
import { nsExec } from '../helpers/netns.js'

const PREFIX = 'sca-cli'
const PORT = 8080
const METRICS = 9464
const CLI = path.resolve(__dirname, '../../dist/cli.js')

describeKernel('syncookie-agent CLI', () => {
  let env: KernelEnv
  let cli: ChildProcess | undefined
  let output = ''
  const dir = mkdtempSync(path.join(tmpdir(), 'sca-cli-'))
  const keyFile = path.join(dir, 'key')
  registerCleanup()
  afterAll(() => {
    cli?.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  })

  beforeAll(async () => {
    requireDist()
    env = await setupKernelEnv(PREFIX)
    await env.server.listen({ host: env.topo.server.ip4, port: PORT, mode: 'echo-bulk' })
    writeFileSync(keyFile, '000102030405060708090a0b0c0d0e0f\n', { mode: 0o600 })
    cli = spawn(
      'nsenter',
      [`--net=/run/netns/${env.topo.server.ns}`, process.execPath, CLI, '-i', env.topo.server.dev, '-p', String(PORT), '--key-file', keyFile, '--metrics', `127.0.0.1:${METRICS}`],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    cli.stdout?.on('data', (d: Buffer) => (output += d.toString()))
    cli.stderr?.on('data', (d: Buffer) => (output += d.toString()))
    const ready = await poll(async () => (output.includes('metrics at') ? true : undefined), { timeoutMs: 10_000 })
    expect(ready, `the CLI did not come up:\n${output}`).toBe(true)
  })

  const metrics = async (): Promise<Record<string, number>> => {
    const script = `fetch('http://127.0.0.1:${METRICS}/metrics').then((r) => r.text()).then((t) => process.stdout.write(t))`
    const { stdout } = await nsExec(env.topo.server.ns, [process.execPath, '-e', script])
    return Object.fromEntries(
      stdout
        .split('\n')
        .filter((l) => l.startsWith('syncookie_agent_'))
        .map((l) => [l.split(' ')[0], Number(l.split(' ')[1])]),
    )
  }

  it('protects the port and counts the handshakes in its metrics', async () => {
    const before = await metrics()
    for (let i = 0; i < 5; i++) {
      const r = await env.client.connect({ host: env.topo.server.ip4, port: PORT, bytes: 1024 })
      expect(r.ok, JSON.stringify(r)).toBe(true)
    }
    const after = await metrics()
    const drops = await env.topo.drops()
    const accepted = after.syncookie_agent_ack_accepted_total - before.syncookie_agent_ack_accepted_total
    if (drops === 0) expect(accepted).toBe(5)
    else expect(accepted).toBeGreaterThanOrEqual(5)
    expect(after.syncookie_agent_ack_rejected_total).toBe(0)
    expect(output).toMatch(/protecting port\(s\) 8080 on sca-cli-s \(tcx\)/)
  })

  it('rotates when the key file changes and keeps accepting', async () => {
    writeFileSync(keyFile, 'f0e0d0c0b0a090807060504030201000\n')
    const rotated = await poll(async () => (output.includes('secret rotated') ? true : undefined), { timeoutMs: 5_000 })
    expect(rotated, output).toBe(true)
    expect(output).not.toMatch(/f0e0d0c0|00010203/) // the secret is never printed
    const r = await env.client.connect({ host: env.topo.server.ip4, port: PORT, bytes: 1024 })
    expect(r.ok, JSON.stringify(r)).toBe(true)
  })

  it('detaches on SIGTERM and exits 0', async () => {
    const exited = new Promise<number | null>((resolve) => cli?.once('exit', (code) => resolve(code)))
    cli?.kill('SIGTERM')
    expect(await exited).toBe(0)
    expect(await tcxIngress(env.topo.server.ns, env.topo.server.dev)).toEqual([])
    cli = undefined
  })
})
