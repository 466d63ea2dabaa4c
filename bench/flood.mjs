// End-to-end SYN flood: kernel syncookies vs the agent, in two namespaces
// joined by a veth pair, in one run.
//
//   scflood-<pid>-srv  fl-s 192.0.2.1/24   listener (backlog 128), agent, softirq on CPU 0
//   scflood-<pid>-cli  fl-c 192.0.2.2/24   legitimate client, flooder, softirq on CPU 1
//
// The flooder (bench/flooder.c) sends SYNs from random addresses of
// 198.18.0.0/15 (RFC 2544's benchmarking range), which the server routes back
// to the client namespace where they are assigned to nothing, so the SYN-ACKs
// are dropped there without an answer.
//
// Pinning. veth has no interrupt: a frame sent into one end is queued on the
// per-CPU backlog (netif_rx) of the sending CPU, and the receive side runs in
// that CPU's softirq. RPS is the one thing that moves it: rps_cpus of fl-s
// rx-0 = CPU 0 queues everything the server receives on CPU 0's backlog
// (also what the flooder sends from CPU 1), and rps_cpus of fl-c = CPU 1
// sends the SYN-ACKs' receive work back to CPU 1. The listener (and the
// agent's loader) are pinned to CPU 0 with taskset, the flooder and the
// legitimate client to CPU 1 (the flooder at nice 19, so that the client is
// not starved by it). What the server's kernel does for a SYN - backlog,
// tcx, the BPF program or the TCP stack, the SYN-ACK's transmit through veth
// - is then CPU 0's softirq/system time.
//
// Server CPU per SYN. CPU 0's busy time over the measured window (elapsed
// less idle from /proc/stat: this kernel has no IRQ_TIME_ACCOUNTING, so its
// softirq column is sampled at the 4 ms tick and aliases with the flooder's
// periodic batches, while NO_HZ idle time is exact), less what the
// legitimate connections cost (CPU 0's busy time per connection in the
// unflooded phase of the same mode, times the connections made), divided by
// the SYNs that reached the server (sent by the flooder less the veth drops).
// The benchmark's own process is moved to CPU 1; anything else that runs on
// CPU 0 counts: run it on an idle machine. The (sampled) softirq share of CPU
// 0 is reported beside it.
import { spawn, execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { createNamespace, deleteNamespace, nsExec, removeLeftovers, sh, startWorker } from './ns.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const root = path.resolve(here, '..')
const FLOODER_SRC = path.join(here, 'flooder.c')
const FLOODER_BIN = path.join(root, 'build/bench/flooder')
export const RESULTS_DIR = path.join(here, 'results')

const SERVER_IP = '192.0.2.1'
const CLIENT_IP = '192.0.2.2'
const SPOOF_NET = '198.18.0.0/15'
const PORT = { agent: 8080, kernel: 8081 }
const SERVER_CPU = 0
const CLIENT_CPU = 1
const BACKLOG = 128
const TIMEOUT_MS = 1000
// One lane connects one connection after the other, 64 more keep one each in
// flight; every lane pauses between two connections so that the legitimate load (a Node listener
// costs ~0.2 ms of CPU per connection) stays a small part of the server CPU.
const LANES = [
  { name: 'sequential', concurrency: 1, pauseMs: 10 },
  { name: 'concurrent', concurrency: 64, pauseMs: 200 },
]

/** Builds bench/flooder.c into build/bench/flooder unless it is up to date. */
export function buildFlooder() {
  if (existsSync(FLOODER_BIN) && statSync(FLOODER_BIN).mtimeMs >= statSync(FLOODER_SRC).mtimeMs) return FLOODER_BIN
  mkdirSync(path.dirname(FLOODER_BIN), { recursive: true })
  execFileSync('cc', ['-O2', '-Wall', '-Wextra', '-o', FLOODER_BIN, FLOODER_SRC], { stdio: 'inherit' })
  return FLOODER_BIN
}

function macOf(ns, dev) {
  return JSON.parse(sh(['ip', '-n', ns, '-j', 'link', 'show', 'dev', dev]))[0].address
}

function linkStats(ns, dev) {
  const s = JSON.parse(sh(['ip', '-n', ns, '-j', '-s', 'link', 'show', 'dev', dev]))[0].stats64
  return { rxPackets: s.rx.packets, rxDropped: s.rx.dropped, txPackets: s.tx.packets, txDropped: s.tx.dropped }
}

/**
 * CPU `cpu`'s idle and softirq time in µs (/proc/stat, USER_HZ units), with
 * the monotonic clock. Idle time is measured exactly on a NO_HZ kernel (the
 * idle entry and exit times); softirq, user and system time are sampled at
 * the tick, which a periodic load (the flooder's rate-limited batches) can
 * alias with: busy time is therefore elapsed time less idle time.
 */
function cpuTimes(cpu) {
  const tick = 1e6 / 100 // USER_HZ
  const line = readFileSync('/proc/stat', 'utf8').split('\n').find((l) => l.startsWith(`cpu${cpu} `))
  const [, , , idle, iowait, , softirq] = line.trim().split(/\s+/).slice(1).map(Number)
  return { atUs: Number(process.hrtime.bigint() / 1000n), idleUs: (idle + iowait) * tick, softirqUs: softirq * tick }
}

function quantile(sorted, q) {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]
}

function synRecv(ns, port) {
  const out = nsExec(ns, ['ss', '-Htn', 'state', 'syn-recv', `( sport = :${port} )`])
  return out.split('\n').filter((l) => l.trim()).length
}

function setupTopology() {
  removeLeftovers('scflood')
  const srv = createNamespace('scflood', 'srv')
  const cli = createNamespace('scflood', 'cli')
  sh(['ip', 'link', 'add', 'fl-s', 'netns', srv, 'type', 'veth', 'peer', 'name', 'fl-c', 'netns', cli])
  sh(['ip', '-n', srv, 'addr', 'add', `${SERVER_IP}/24`, 'dev', 'fl-s'])
  sh(['ip', '-n', cli, 'addr', 'add', `${CLIENT_IP}/24`, 'dev', 'fl-c'])
  sh(['ip', '-n', srv, 'link', 'set', 'fl-s', 'up'])
  sh(['ip', '-n', cli, 'link', 'set', 'fl-c', 'up'])
  const smac = macOf(srv, 'fl-s')
  const cmac = macOf(cli, 'fl-c')
  // Static neighbours: no ARP on the measured path; the spoofed range goes back to the client.
  sh(['ip', '-n', srv, 'neigh', 'replace', CLIENT_IP, 'lladdr', cmac, 'dev', 'fl-s', 'nud', 'permanent'])
  sh(['ip', '-n', cli, 'neigh', 'replace', SERVER_IP, 'lladdr', smac, 'dev', 'fl-c', 'nud', 'permanent'])
  sh(['ip', '-n', srv, 'route', 'add', SPOOF_NET, 'via', CLIENT_IP, 'dev', 'fl-s'])
  // RPS: the server's receive work on CPU 0, the client's on CPU 1 (see the top of this file).
  nsExec(srv, ['sh', '-c', `echo ${1 << SERVER_CPU} > /sys/class/net/fl-s/queues/rx-0/rps_cpus`])
  nsExec(cli, ['sh', '-c', `echo ${1 << CLIENT_CPU} > /sys/class/net/fl-c/queues/rx-0/rps_cpus`])
  nsExec(srv, ['sysctl', '-qw', 'net.ipv4.tcp_syncookies=1', `net.core.somaxconn=${BACKLOG}`])
  nsExec(cli, ['sysctl', '-qw', 'net.ipv4.ip_local_port_range=1024 65535', 'net.ipv4.tcp_tw_reuse=1'])
  return { srv, cli, smac, cmac }
}

function runFlooder(topo, port, pps, seconds) {
  const child = spawn('nsenter', [`--net=/run/netns/${topo.cli}`, 'nice', '-n', '19', 'taskset', '-c', String(CLIENT_CPU),
    FLOODER_BIN, 'fl-c', topo.cmac, topo.smac, SERVER_IP, String(port), SPOOF_NET, String(pps), String(seconds)], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.on('data', (d) => (out += d))
  const done = new Promise((resolve, reject) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), (seconds + 10) * 1000)
    child.on('exit', (code) => {
      clearTimeout(timer)
      if (code !== 0) return reject(new Error(`flooder exited ${code}`))
      resolve(JSON.parse(out.trim().split('\n').at(-1)))
    })
  })
  return { child, done }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/**
 * One phase: the legitimate client for `seconds`, under a flood of `pps`
 * (null: no flood; 0: as fast as the flooder goes) that starts 1 s earlier
 * and ends 1 s later. Returns the raw measurements.
 */
async function phase(topo, client, mode, pps, seconds) {
  const port = PORT[mode]
  let flood
  if (pps !== null) {
    flood = runFlooder(topo, port, pps, seconds + 2)
    await sleep(1000)
  }
  const link0 = linkStats(topo.cli, 'fl-c')
  const cpu0 = cpuTimes(SERVER_CPU)
  const t0 = process.hrtime.bigint()
  const legitP = client.call('flood.legit', { host: SERVER_IP, port, durationMs: seconds * 1000, timeoutMs: TIMEOUT_MS, lanes: LANES }, (seconds + 30) * 1000)
  let synRecvAtEnd = null
  await sleep(Math.max(0, seconds * 1000 - 500))
  synRecvAtEnd = synRecv(topo.srv, port)
  const legit = await legitP
  const cpu1 = cpuTimes(SERVER_CPU)
  const link1 = linkStats(topo.cli, 'fl-c')
  const windowS = Number(process.hrtime.bigint() - t0) / 1e9
  const flooder = flood ? await flood.done : null
  return {
    mode,
    pps,
    windowS,
    legit,
    synRecvAtEnd,
    cpuBusyUs: cpu1.atUs - cpu0.atUs - (cpu1.idleUs - cpu0.idleUs),
    cpuSoftirqUs: cpu1.softirqUs - cpu0.softirqUs,
    vethTxDropped: link1.txDropped - link0.txDropped,
    clientTxPackets: link1.txPackets - link0.txPackets,
    flooder,
  }
}

function summarize(raw, baseline) {
  const all = Object.values(raw.legit)
  const attempts = all.reduce((a, g) => a + g.attempts, 0)
  const ok = all.reduce((a, g) => a + g.ok, 0)
  const times = Float64Array.from(all.flatMap((g) => g.times)).sort()
  const lanes = Object.fromEntries(Object.entries(raw.legit).map(([name, g]) => {
    const t = Float64Array.from(g.times).sort()
    return [name, { attempts: g.attempts, ok: g.ok, successPct: (100 * g.ok) / Math.max(1, g.attempts), p50ConnectMs: quantile(t, 0.5), p99ConnectMs: quantile(t, 0.99), errors: g.errors }]
  }))
  const entry = {
    mode: raw.mode,
    offeredPps: raw.pps === null ? 0 : raw.pps === 0 ? 'max' : raw.pps,
    achievedPps: raw.flooder ? Math.round(raw.flooder.pps) : 0,
    legitSuccess: Number(((100 * ok) / Math.max(1, attempts)).toFixed(3)),
    p50ConnectMs: Number(quantile(times, 0.5).toFixed(3)),
    p99ConnectMs: Number(quantile(times, 0.99).toFixed(3)),
    cpuUsPerSyn: null,
    synRecv: raw.synRecvAtEnd,
    legitAttempts: attempts,
    lanes,
    serverCpuBusyPct: Number(((100 * raw.cpuBusyUs) / (raw.windowS * 1e6)).toFixed(1)),
  }
  if (raw.flooder) {
    // SYNs that reached the server over the window: the flooder's rate less what veth dropped.
    const synsSent = raw.flooder.pps * raw.windowS
    const delivered = Math.max(1, synsSent - raw.vethTxDropped)
    const legitCpu = baseline ? baseline.busyPerConnUs * ok : 0
    entry.deliveredPps = Math.round(delivered / raw.windowS)
    entry.vethDropped = raw.vethTxDropped
    entry.cpuUsPerSyn = Number(Math.max(0, (raw.cpuBusyUs - legitCpu) / delivered).toFixed(3))
  } else {
    entry.busyPerConnUs = Number((raw.cpuBusyUs / Math.max(1, ok)).toFixed(2))
  }
  entry.serverSoftirqPct = Number(((100 * raw.cpuSoftirqUs) / (raw.windowS * 1e6)).toFixed(1))
  return entry
}

/**
 * Runs the flood benchmark. `rates` are offered pps (0: the flooder's
 * maximum); `seconds` per phase. Returns { entries (one per mode and rate,
 * offeredPps 'max' for the flooder's maximum; plus the unflooded baseline
 * of each mode, offeredPps 0), agentStats, meta }.
 * Namespaces are removed at the end, also on failure.
 */
export async function runFlood({ modes = ['agent', 'kernel'], rates = [50_000, 100_000, 0], seconds = 10, baselineSeconds = 5, log = () => undefined } = {}) {
  if (process.getuid?.() !== 0) throw new Error('the flood benchmark needs root (namespaces, AF_PACKET, BPF)')
  if ((await import('node:os')).cpus().length < 2) throw new Error('the flood benchmark needs 2 CPUs (server and flooder on different ones)')
  buildFlooder()
  // This process (all its threads) off the server's CPU.
  sh(['taskset', '-a', '-p', '-c', String(CLIENT_CPU), String(process.pid)])
  const topo = setupTopology()
  const workers = []
  const entries = []
  let agentStats = null
  try {
    const server = await startWorker(topo.srv, { cpu: SERVER_CPU })
    workers.push(server)
    const client = await startWorker(topo.cli, { cpu: CLIENT_CPU })
    workers.push(client)
    const opsPath = path.join(here, 'ops-flood.mjs')
    await server.call('worker.load', opsPath)
    await client.call('worker.load', opsPath)
    for (const mode of modes) {
      await server.call('flood.listen', { host: SERVER_IP, port: PORT[mode], backlog: BACKLOG })
      if (mode === 'agent') {
        await server.call('agent.create', { ports: [PORT.agent] })
        await server.call('agent.attach', 'fl-s', 30_000)
      }
      // Let what loading and attaching started on CPU 0 settle first (the
      // baseline's CPU per connection is subtracted from every flooded phase).
      await sleep(2000)
      log(`${mode}: unflooded, ${baselineSeconds} s`)
      const before = await phase(topo, client, mode, null, baselineSeconds)
      const flooded = []
      for (const pps of rates) {
        log(`${mode}: ${pps ? `${pps / 1000}k pps` : 'max pps'}, ${seconds} s`)
        flooded.push(await phase(topo, client, mode, pps, seconds))
        await sleep(500)
      }
      // The legitimate connections' CPU cost is measured unflooded before and
      // after; the lower of the two is taken (the other may include a
      // neighbour's burst of work on this shared machine).
      log(`${mode}: unflooded again, ${baselineSeconds} s`)
      const after = await phase(topo, client, mode, null, baselineSeconds)
      const base = summarize(before)
      base.busyPerConnUs = Math.min(base.busyPerConnUs, summarize(after).busyPerConnUs)
      entries.push(base, ...flooded.map((raw) => summarize(raw, base)))
      if (mode === 'agent') {
        agentStats = await server.call('agent.stats')
        await server.call('agent.close')
      }
      await server.call('flood.unlisten', { port: PORT[mode] })
    }
  } finally {
    for (const w of workers) await w.kill()
    deleteNamespace(topo.srv)
    deleteNamespace(topo.cli)
  }
  return {
    entries,
    agentStats,
    meta: { seconds, baselineSeconds, timeoutMs: TIMEOUT_MS, backlog: BACKLOG, lanes: LANES, kernel: sh(['uname', '-r']).trim(), date: new Date().toISOString() },
  }
}
