#!/usr/bin/env node
// npm run bench [-- --json] [-- --flood] [-- --runs N]
// npm run bench:flood [-- --json] [-- --seconds S]
//
// Per-packet cost of bpf/syncookie.bpf.c under BPF_PROG_TEST_RUN against the
// anchors of bench/anchors.bpf.c (bench/perpacket.mjs), and the end-to-end
// flood, kernel syncookies vs the agent (bench/flood.mjs). Prints tables; with
// --json the last line is one JSON object:
//   { synNs, ackInvalidNs, otherPortNs, establishedNs, noopNs, kernelGenNs,
//     kernelCheckNs, v6: { same names }, flood: [...], targets, ... }
// `npm run bench` alone takes its flood entries from the last bench:flood run
// (bench/results/flood.json), `--flood` runs the flood too.
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { floodChart } from './chart.mjs'
import { RESULTS_DIR, runFlood } from './flood.mjs'
import { ANCHORS_OBJ, PER_PACKET_KEYS, runPerPacket } from './perpacket.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const root = path.resolve(here, '..')
/** Single-shot runs of one case in a row: the steady state of a stream of such packets. */
const STREAM_BLOCK = 100

function parseArgs(argv) {
  const o = { json: false, flood: false, perPacket: true, runs: 20_000, seconds: 10, baselineSeconds: 5, waitIdleS: 600, rates: [50_000, 100_000, 0] }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const num = () => {
      const v = Number(argv[++i])
      if (!Number.isFinite(v) || v <= 0) throw new RangeError(`${a} needs a positive number, got ${argv[i]}`)
      return v
    }
    if (a === '--json') o.json = true
    else if (a === '--flood') o.flood = true
    else if (a === '--flood-only') (o.flood = true), (o.perPacket = false)
    else if (a === '--runs') o.runs = Math.floor(num())
    else if (a === '--seconds') o.seconds = Math.min(20, num())
    else if (a === '--wait-idle') o.waitIdleS = num()
    else if (a === '--rates') o.rates = String(argv[++i]).split(',').map((r) => (r === 'max' ? 0 : Number(r)))
    else throw new RangeError(`unknown option ${a} (--json, --flood, --flood-only, --runs N, --seconds S, --rates 50000,100000,max, --wait-idle S)`)
  }
  return o
}

/** The build is up to date (scripts/ensure-built.mjs), anchors included. */
function ensureBuilt(say) {
  execFileSync(process.execPath, [path.join(root, 'scripts/ensure-built.mjs')], { stdio: ['ignore', 'inherit', 'inherit'] })
  const src = path.join(here, 'anchors.bpf.c')
  if (!existsSync(ANCHORS_OBJ) || statSync(ANCHORS_OBJ).mtimeMs < statSync(src).mtimeMs) {
    say('building the anchor programs')
    execFileSync('npx', ['cmake-js', 'compile', '--target', 'anchors'], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] })
  }
}

/** Kernel tests share the per-CPU backlog with a flood: wait until none runs. */
async function waitIdle(seconds, say) {
  const busy = () => {
    try {
      return execFileSync('pgrep', ['-f', 'vitest'], { encoding: 'utf8' }).trim().split('\n').filter(Boolean)
    } catch {
      return []
    }
  }
  const deadline = Date.now() + seconds * 1000
  let told = false
  while (busy().length > 0) {
    if (Date.now() > deadline) throw new Error(`vitest is still running after ${seconds} s: a flood would disturb its kernel tests; try later (--wait-idle S)`)
    if (!told) say('waiting for running vitest processes to finish (a flood shares the per-CPU backlog with kernel tests)')
    told = true
    await new Promise((r) => setTimeout(r, 2000))
  }
}

// ---- targets -------------------------------------------------------------------

function perPacketTargets(f) {
  return [
    { name: 'SYN path ≤ 2×kernelGenNs + noopNs', value: f.synNs, bound: 2 * f.kernelGenNs + f.noopNs },
    { name: 'invalid ACK ≤ 1.5×kernelCheckNs + noopNs', value: f.ackInvalidNs, bound: 1.5 * f.kernelCheckNs + f.noopNs },
    { name: 'established ≤ noopNs + 20', value: f.establishedNs, bound: f.noopNs + 20 },
    { name: 'other port ≤ noopNs + 20', value: f.otherPortNs, bound: f.noopNs + 20 },
  ].map((t) => ({ ...t, met: t.value <= t.bound }))
}

function floodTargets(flood) {
  const by = (mode, pps) => flood.find((e) => e.mode === mode && e.offeredPps === pps)
  const out = []
  const agentMax = by('agent', 'max')
  const agentBase = by('agent', 0)
  const k100 = by('kernel', 100_000)
  const a100 = by('agent', 100_000)
  if (agentMax) out.push({ name: 'agent, max flood: legitimate success ≥ 99.9%', value: agentMax.legitSuccess, bound: 99.9, met: agentMax.legitSuccess >= 99.9 })
  if (agentMax && agentBase) {
    out.push({ name: 'agent, max flood: p99 connect ≤ 2× unflooded p99', value: agentMax.p99ConnectMs, bound: 2 * agentBase.p99ConnectMs, met: agentMax.p99ConnectMs <= 2 * agentBase.p99ConnectMs })
  }
  if (k100 && a100 && k100.cpuUsPerSyn !== null && a100.cpuUsPerSyn !== null) {
    out.push({ name: 'agent, 100k pps: server CPU per SYN ≤ ⅓ kernel', value: a100.cpuUsPerSyn, bound: k100.cpuUsPerSyn / 3, met: a100.cpuUsPerSyn <= k100.cpuUsPerSyn / 3 })
  }
  return out
}

// ---- printing ------------------------------------------------------------------

const fmt = (v, d = 0) => (v === null || v === undefined || Number.isNaN(v) ? '-' : Number(v).toFixed(d))

function table(rows) {
  const w = rows[0].map((_, c) => Math.max(...rows.map((r) => String(r[c]).length)))
  return rows.map((r) => r.map((cell, c) => (c === 0 ? String(cell).padEnd(w[c]) : String(cell).padStart(w[c]))).join('  ')).join('\n')
}

const LABEL = {
  synNs: 'SYN to a protected port → SYN-ACK',
  ackInvalidNs: 'ACK, invalid cookie (dropped)',
  otherPortNs: 'ACK to a non-protected port',
  establishedNs: 'segment of an established flow',
  noopNs: 'anchor: empty TC program (floor)',
  kernelGenNs: 'anchor: bpf_tcp_raw_gen_syncookie',
  kernelCheckNs: 'anchor: bpf_tcp_raw_check_syncookie',
}
const VERSUS = { synNs: 'kernelGenNs', ackInvalidNs: 'kernelCheckNs', otherPortNs: 'noopNs', establishedNs: 'noopNs' }

function printPerPacket(pp, runs, cold) {
  const r = pp.results
  const rows = [['', 'v4 ns', 'p25–p75', 'v6 ns', 'p25–p75', '− floor v4', '× anchor v4', 'net × v4', '× anchor v6', 'net × v6']]
  for (const k of PER_PACKET_KEYS) {
    const a = r.v4.singleShot[k]
    const b = r.v6.singleShot[k]
    const vs = VERSUS[k]
    const s = (fam, key) => r[fam].singleShot[key].median
    const ratio = (fam) => (vs ? `${fmt(s(fam, k) / s(fam, vs), 2)}×` : '')
    // net: both less the floor, i.e. the program's own work against the kernel's maths
    const net = (fam) => (vs && vs !== 'noopNs' ? `${fmt((s(fam, k) - s(fam, 'noopNs')) / Math.max(1, s(fam, vs) - s(fam, 'noopNs')), 2)}×` : '')
    rows.push([`${LABEL[k]} (${k})`, fmt(a.median), `${fmt(a.p25)}–${fmt(a.p75)}`, fmt(b.median), `${fmt(b.p25)}–${fmt(b.p75)}`,
      k === 'noopNs' ? '' : fmt(a.median - s('v4', 'noopNs')), ratio('v4'), net('v4'), ratio('v6'), net('v6')])
  }
  console.log(`\nPer packet: BPF_PROG_TEST_RUN, one run per call (repeat 1), median of ${runs} calls per case,`)
  console.log(`${STREAM_BLOCK} calls of a case in a row, the cases in turn; the same frames for the program and its anchors`)
  console.log('("net ×": both less the floor, i.e. the program\'s own work against the kernel\'s maths)\n')
  console.log(table(rows))
  const c = cold.results
  const coldRows = [['interleaved call by call (cold caches)', 'v4 ns', 'v6 ns']]
  for (const k of PER_PACKET_KEYS) coldRows.push([k, fmt(c.v4.singleShot[k].median), fmt(c.v6.singleShot[k].median)])
  console.log(`\n${table(coldRows)}`)
  const rep = [['repeat-based (side note, mean per repetition)', 'v4 ns', 'v6 ns']]
  for (const k of PER_PACKET_KEYS) if (r.v4.repeated[k]) rep.push([k, fmt(r.v4.repeated[k].median), fmt(r.v6.repeated[k].median)])
  console.log(`\n${table(rep)}`)
  console.log(`test_run overhead (the floor, single shot): ${fmt(r.v4.singleShot.noopNs.median)} ns; with repeat: ${fmt(r.v4.repeated.noopNs.median)} ns per repetition`)
}

function printTargets(targets) {
  const rows = [['target', 'measured', 'bound', '']]
  for (const t of targets) rows.push([t.name, fmt(t.value, t.value < 10 ? 3 : 1), fmt(t.bound, t.bound < 10 ? 3 : 1), t.met ? 'met' : 'MISSED'])
  console.log(`\n${table(rows)}`)
}

function printFlood(flood, source) {
  const rows = [['mode', 'offered pps', 'reached pps', 'delivered', 'legit ok %', 'seq ok %', '64× ok %', 'p50 ms', 'p99 ms', 'CPU µs/SYN', 'CPU0 si %', 'CPU0 busy %', 'SYN-RECV']]
  for (const e of flood) {
    rows.push([e.mode, e.offeredPps === 0 ? 'none' : String(e.offeredPps), fmt(e.achievedPps), fmt(e.deliveredPps), fmt(e.legitSuccess, 2), fmt(e.lanes?.sequential?.successPct, 2), fmt(e.lanes?.concurrent?.successPct, 2), fmt(e.p50ConnectMs, 2), fmt(e.p99ConnectMs, 2), fmt(e.cpuUsPerSyn, 2), fmt(e.serverSoftirqPct, 1), fmt(e.serverCpuBusyPct, 1), fmt(e.synRecv)])
  }
  console.log(`\nFlood (${source}): legitimate client = 1 sequential lane + 64 concurrent lanes, 1 s timeout;`)
  console.log('p99 counts a failure as 1 s; CPU µs/SYN = CPU 0 busy time less the legitimate share, per delivered SYN; si = sampled softirq')
  console.log(table(rows))
}

// ---- main ------------------------------------------------------------------------

async function main() {
  const o = parseArgs(process.argv.slice(2))
  const say = (m) => process.stderr.write(`• ${m}\n`)
  if (process.getuid?.() !== 0) throw new Error('the benchmarks load BPF programs and create namespaces: run them as root')
  ensureBuilt(say)
  const out = {}
  let targets = []

  if (o.perPacket) {
    say(`per packet: ${o.runs} single-shot runs of each case (v4 and v6), in blocks of ${STREAM_BLOCK}, in namespace scbench-${process.pid}-pp`)
    const pp = await runPerPacket({ runs: o.runs, block: STREAM_BLOCK })
    say(`per packet, interleaved call by call: ${o.runs} more runs of each case`)
    const cold = await runPerPacket({ runs: o.runs, block: 1, repeatRuns: 0 })
    printPerPacket(pp, o.runs, cold)
    const medians = (r, fam) => Object.fromEntries(PER_PACKET_KEYS.map((k) => [k, r.results[fam].singleShot[k].median]))
    Object.assign(out, medians(pp, 'v4'))
    out.v6 = medians(pp, 'v6')
    out.interleaved = { ...medians(cold, 'v4'), v6: medians(cold, 'v6') }
    out.repeated = { v4: Object.fromEntries(Object.entries(pp.results.v4.repeated).map(([k, v]) => [k, v.median])), v6: Object.fromEntries(Object.entries(pp.results.v6.repeated).map(([k, v]) => [k, v.median])) }
    out.perPacketRuns = o.runs
    out.perPacketCounters = pp.stats
    targets = perPacketTargets(out).map((t) => ({ ...t, family: 'v4' })).concat(perPacketTargets(out.v6).map((t) => ({ ...t, family: 'v6', name: `v6: ${t.name}` })))
  }

  let flood = []
  let floodSource = 'none'
  const latest = path.join(RESULTS_DIR, 'flood.json')
  if (o.flood) {
    await waitIdle(o.waitIdleS, say)
    const t0 = Date.now()
    const r = await runFlood({ rates: o.rates, seconds: o.seconds, baselineSeconds: Math.min(o.baselineSeconds, o.seconds), log: say })
    flood = r.entries
    floodSource = `this run, ${((Date.now() - t0) / 1000).toFixed(0)} s`
    mkdirSync(RESULTS_DIR, { recursive: true })
    const stamp = r.meta.date.replace(/[:.]/g, '-')
    const record = { ...r, perPacket: o.perPacket ? out : undefined }
    writeFileSync(latest, JSON.stringify(record, null, 2) + '\n')
    writeFileSync(path.join(RESULTS_DIR, `flood-${stamp}.json`), JSON.stringify(record, null, 2) + '\n')
    const svg = floodChart(flood, { subtitle: `${r.meta.kernel}, ${r.meta.date}` })
    writeFileSync(path.join(RESULTS_DIR, 'flood.svg'), svg)
    writeFileSync(path.join(RESULTS_DIR, `flood-${stamp}.svg`), svg)
    say(`wrote ${path.relative(root, latest)} and ${path.relative(root, path.join(RESULTS_DIR, 'flood.svg'))}`)
    out.agentStats = r.agentStats
  } else if (existsSync(latest)) {
    const r = JSON.parse(readFileSync(latest, 'utf8'))
    flood = r.entries
    floodSource = `from ${path.relative(root, latest)}, ${r.meta.date}`
  }
  if (flood.length > 0) {
    printFlood(flood, floodSource)
    targets = targets.concat(floodTargets(flood))
  }
  out.flood = flood.map(({ mode, offeredPps, achievedPps, legitSuccess, p99ConnectMs, cpuUsPerSyn, ...rest }) => ({ mode, offeredPps, achievedPps, legitSuccess, p99ConnectMs, cpuUsPerSyn, ...rest }))
  out.floodSource = floodSource
  if (targets.length > 0) printTargets(targets)
  out.targets = targets
  if (o.json) console.log(JSON.stringify(out))
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
