// Namespace-worker ops for `npm run bench` (loaded with worker.load into
// test/helpers/nsworker.mjs, which runs in a namespace of its own): the
// per-packet cost of bpf/syncookie.bpf.c and of the anchor programs
// (bench/anchors.bpf.c), all through BPF_PROG_TEST_RUN on the same frames.
//
// Under test_run skb->dev is this namespace's lo, so the program's socket
// lookups see this namespace's sockets: a listener on the protected port
// (v4 and v6) and one real established connection per family over lo.
import { once } from 'node:events'
import { createRequire } from 'node:module'
import net from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { TCP, TC_ACT, linuxSynOptions, parseTcp, tcpFrame, tsOptions } from './craft.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const require = createRequire(import.meta.url)

export function register({ ops, loadAgentModule }) {
  ops['bench.perPacket'] = (args) => perPacket(loadAgentModule(), args)
}

const FAMILIES = {
  v4: { server: '127.0.0.1', peer: '127.0.0.2', any: '0.0.0.0', gen: 'gen4', check: 'check4' },
  v6: { server: '::1', peer: '::2', any: '::', gen: 'gen6', check: 'check6' },
}

/** What the program returns for traffic it passes on: TC_ACT_UNSPEC (TCX_NEXT) as a u32. */
const TC_ACT_NEXT = 0xffffffff

/** The cases, each a program (ours or an anchor) on a frame, with the verdict it must give. */
function cases(fam, port, otherPort, established) {
  const f = FAMILIES[fam]
  const syn = tcpFrame({ src: f.peer, dst: f.server, sport: 40000, dport: port, seq: 0x11223344, flags: TCP.SYN, options: linuxSynOptions(), window: 64240 })
  // An ACK as a client would send to complete a handshake, but its cookie is wrong.
  const ackInvalid = tcpFrame({ src: f.peer, dst: f.server, sport: 40001, dport: port, seq: 0x11223345, ack: 0x5a5a5a5b, flags: TCP.ACK, options: tsOptions(0x01020305, 0x0badf00d) })
  const otherPort_ = tcpFrame({ src: f.peer, dst: f.server, sport: 40002, dport: otherPort, seq: 0x11223345, ack: 0x5a5a5a5b, flags: TCP.ACK, options: tsOptions(0x01020305, 0x0badf00d) })
  const est = tcpFrame({ src: f.server, dst: f.server, sport: established.localPort, dport: port, seq: 1000, ack: 2000, flags: TCP.ACK, options: tsOptions(0x01020305, 0x0badf00d) })
  return [
    { key: 'synNs', prog: 'ours', frame: syn, verdict: TC_ACT.REDIRECT, stat: 'synAckSent' },
    { key: 'ackInvalidNs', prog: 'ours', frame: ackInvalid, verdict: TC_ACT.SHOT, stat: 'ackRejected', repeatable: true },
    { key: 'otherPortNs', prog: 'ours', frame: otherPort_, verdict: TC_ACT_NEXT, stat: null, repeatable: true },
    { key: 'establishedNs', prog: 'ours', frame: est, verdict: TC_ACT_NEXT, stat: 'passEstablished', repeatable: true },
    { key: 'noopNs', prog: 'noop', frame: syn, verdict: TC_ACT.OK, repeatable: true },
    { key: 'kernelGenNs', prog: f.gen, frame: syn, verdict: TC_ACT.OK, repeatable: true },
    // The kernel's check says "no" (TC_ACT_SHOT) to the invalid cookie, as ours does.
    { key: 'kernelCheckNs', prog: f.check, frame: ackInvalid, verdict: TC_ACT.SHOT, repeatable: true },
  ]
}

function quantile(sorted, q) {
  if (sorted.length === 0) return NaN
  const i = (sorted.length - 1) * q
  const lo = Math.floor(i)
  const hi = Math.ceil(i)
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (i - lo)
}

function summary(values) {
  const s = Float64Array.from(values).sort()
  return { median: quantile(s, 0.5), p25: quantile(s, 0.25), p75: quantile(s, 0.75), p99: quantile(s, 0.99), n: s.length }
}

async function listen(host, port) {
  const server = net.createServer({ noDelay: true }, (s) => {
    server.accepted.push(s)
    s.on('error', () => undefined)
  })
  server.accepted = []
  server.listen({ host, port, backlog: 128, ipv6Only: host.includes(':') })
  await once(server, 'listening')
  return server
}

async function connect(host, port) {
  const s = net.connect({ host, port })
  s.on('error', () => undefined)
  await once(s, 'connect')
  return s
}

async function perPacket(mod, { port, otherPort, runs, block = 1, repeat, repeatRuns, anchorsPath, families = ['v4', 'v6'] }) {
  const { SynCookieAgent } = mod
  const native = require(path.resolve(here, '../dist/native.js')).loadNative()
  const cleanups = []
  try {
    const servers = [await listen('0.0.0.0', port), await listen('::', port)]
    cleanups.push(() => servers.forEach((s) => s.close()))
    const clients = { v4: await connect('127.0.0.1', port), v6: await connect('::1', port) }
    cleanups.push(() => Object.values(clients).forEach((s) => s.destroy()))
    cleanups.push(() => servers.forEach((s) => s.accepted.forEach((c) => c.destroy())))

    const agent = new SynCookieAgent({ ports: [port] })
    cleanups.push(() => agent.close())
    // Steady state of a running agent: a current and a previous secret, so a
    // cookie that fails the current secret is tried with the previous one.
    await agent.rotateSecret()
    const internals = SynCookieAgent._internals(agent)
    const ours = await internals.load()
    const anchors = await native.openObject(anchorsPath)
    cleanups.push(() => anchors.close())

    const all = families.flatMap((fam) => cases(fam, port, otherPort, clients[fam]).map((c) => ({ ...c, fam })))
    const run = (c, n) => (c.prog === 'ours' ? ours.testRun(c.frame, n, c.key === 'synNs' ? 256 : 0) : anchors.testRun(c.prog, c.frame, n, 0))

    // Every case once: the verdict, the counter it must move, and for the SYN the reply.
    for (const c of all) {
      const before = await agent.stats()
      const r = await run(c, 1)
      const after = await agent.stats()
      if (r.retval !== c.verdict) throw new Error(`${c.fam} ${c.key}: verdict ${r.retval}, expected ${c.verdict}`)
      if (c.prog === 'ours') {
        const moved = Object.keys(after).filter((k) => after[k] !== before[k] && k !== 'synReceived')
        const want = c.stat === null ? [] : [c.stat]
        if (moved.join() !== want.join()) throw new Error(`${c.fam} ${c.key}: counters moved ${JSON.stringify(moved)}, expected ${JSON.stringify(want)}`)
      }
      if (c.key === 'synNs') {
        const t = parseTcp(r.data)
        if (t.flags !== (TCP.SYN | TCP.ACK) || t.ack !== 0x11223345) throw new Error(`${c.fam}: the SYN's reply is not its SYN-ACK (flags ${t.flags})`)
      }
    }

    // Single shot, in rounds: every case `block` times in a row per round,
    // so that drift and noise fall on all cases alike. block 1 interleaves
    // the cases call by call (each run finds caches and branch predictors
    // as the others left them); a larger block measures the steady state
    // of a stream of such packets.
    const samples = all.map(() => [])
    for (let i = 0; i < runs; i += block) {
      for (let j = 0; j < all.length; j++) {
        for (let b = 0; b < block && i + b < runs; b++) samples[j].push((await run(all[j], 1)).durationNs)
      }
    }
    // Side note: with repeat, the kernel times a loop and divides (no SYN: its frame is rewritten).
    const repeated = all.map(() => [])
    for (let i = 0; i < repeatRuns; i++) {
      for (let j = 0; j < all.length; j++) if (all[j].repeatable) repeated[j].push((await run(all[j], repeat)).durationNs)
    }

    const out = {}
    all.forEach((c, j) => {
      out[c.fam] ??= { singleShot: {}, repeated: {} }
      out[c.fam].singleShot[c.key] = summary(samples[j])
      if (c.repeatable) out[c.fam].repeated[c.key] = summary(repeated[j])
    })
    return { results: out, stats: Object.fromEntries(Object.entries(await agent.stats()).map(([k, v]) => [k, v.toString()])) }
  } finally {
    for (const f of cleanups.reverse()) {
      try {
        await f()
      } catch {
        // best effort
      }
    }
  }
}
