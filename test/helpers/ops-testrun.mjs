// nsworker extension: BPF_PROG_TEST_RUN of the agent's program, inside the worker's namespace.
//
// Loaded with `worker.call('worker.load', './ops-testrun.mjs')`. Under test_run, skb->dev is
// the loopback device of the caller's netns and bpf_skc_lookup_tcp() looks up sockets there,
// so the worker's namespace must hold the listeners (and have lo up).
//
// Frames travel as hex strings (the IPC channel is JSON). Ops:
//   prog.load                 → { loaded: true }   loads the program (no attachment needed)
//   prog.setClock(ms | null)  pins the program clock (now_ms_override), null = CLOCK_TAI again
//   prog.clockNow             → the program's clock, CLOCK_TAI ms (agent.clockNow())
//   prog.keys                 → [current, previous?] secrets as hex
//   prog.sysctl({ name, value? }) → the value of net.* sysctl `name` in this netns (written first)
//   prog.testRun({ hex, repeat?, sizeOut?, clock?, stats? }) → RunResult
//   prog.batch({ steps })     → one result per step, in order; steps run one after another:
//       { run: hex, repeat?, sizeOut?, clock?, stats? }  → RunResult
//       { setClock: ms | null } / { rotate: hex } / { sysctl: name, value? }  → null / null / value
//       { keys: true } → hex[];  { stats: true } → counters (decimal strings)
//     A failing step rejects the whole batch with the step's index in the message.
// RunResult = { retval, hex, durationNs, moved?, clock? }: `moved` (with stats: true) is every
// counter the run moved, as numbers; `clock` (with clock: true) is { before, after }, the program
// clock read just before and just after the run.

import { readFileSync, writeFileSync } from 'node:fs'

const DEFAULT_SIZE_OUT = 4096

export function register({ ops, needAgent, loadAgentModule }) {
  let program

  const internals = () => loadAgentModule().SynCookieAgent._internals(needAgent())
  const loaded = () => {
    if (program === undefined) throw new Error('ops-testrun: call prog.load first')
    return program
  }

  const counters = async () => {
    const out = {}
    for (const [k, v] of Object.entries(await needAgent().stats())) out[k] = v
    return out
  }

  const sysctlPath = (name) => {
    if (!/^net\.[a-z0-9_.]+$/.test(name)) throw new RangeError(`prog.sysctl: not a net.* sysctl: ${name}`)
    return `/proc/sys/${name.replaceAll('.', '/')}`
  }
  const sysctl = (name, value) => {
    const p = sysctlPath(name)
    if (value !== undefined && value !== null) writeFileSync(p, `${String(value)}\n`)
    return readFileSync(p, 'utf8').trim().replace(/\s+/g, ' ')
  }

  const testRun = async ({ hex, repeat = 1, sizeOut = DEFAULT_SIZE_OUT, clock = false, stats = false }) => {
    const p = loaded()
    const data = Buffer.from(hex, 'hex')
    const s0 = stats ? await counters() : undefined
    const before = clock ? needAgent().clockNow() : undefined
    const r = await p.testRun(data, repeat, sizeOut)
    const after = clock ? needAgent().clockNow() : undefined
    const out = { retval: r.retval, hex: r.data.toString('hex'), durationNs: r.durationNs }
    if (s0 !== undefined) {
      const s1 = await counters()
      out.moved = {}
      for (const [k, v] of Object.entries(s1)) if (v !== s0[k]) out.moved[k] = Number(v - (s0[k] ?? 0n))
    }
    if (clock) out.clock = { before, after }
    return out
  }

  const step = async (s) => {
    if (typeof s.run === 'string') return testRun({ ...s, hex: s.run })
    if ('setClock' in s) {
      internals().setClock(s.setClock)
      return null
    }
    if (typeof s.rotate === 'string') {
      await needAgent().rotateSecret(Uint8Array.from(Buffer.from(s.rotate, 'hex')))
      return null
    }
    if (typeof s.sysctl === 'string') return sysctl(s.sysctl, s.value)
    if (s.keys === true) return internals().keys().map((k) => Buffer.from(k).toString('hex'))
    if (s.stats === true) {
      const out = {}
      for (const [k, v] of Object.entries(await counters())) out[k] = v.toString()
      return out
    }
    throw new TypeError(`prog.batch: unknown step ${JSON.stringify(s)}`)
  }

  Object.assign(ops, {
    'prog.load': async () => {
      program = await internals().load()
      return { loaded: true }
    },
    'prog.setClock': (ms) => {
      internals().setClock(ms)
      return null
    },
    'prog.clockNow': () => needAgent().clockNow(),
    'prog.keys': () => internals().keys().map((k) => Buffer.from(k).toString('hex')),
    'prog.sysctl': ({ name, value }) => sysctl(name, value),
    'prog.testRun': testRun,
    'prog.batch': async ({ steps }) => {
      const results = []
      for (let i = 0; i < steps.length; i++) {
        try {
          results.push(await step(steps[i]))
        } catch (err) {
          err.message = `prog.batch step ${i}: ${err.message}`
          throw err
        }
      }
      return results
    },
  })
}
