#!/usr/bin/env node
// npm run demo: kernel syncookies and syncookie-agent side by side, in two
// network namespaces made for the purpose (joined by a veth pair, addresses
// only inside them) and removed at the end, even on Ctrl-C. The client has TCP
// timestamps off, the case where kernel cookies lose window scaling and SACK;
// then a SYN flood against each (bench/flood.mjs, the flood benchmark's code).
import { execFileSync, spawn } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const SRV = 'scdemo-srv'
const CLI = 'scdemo-cli'
const PORT = 8080
const CONNECTS = 10
const FLOOD_SECONDS = 6

const sh = (args, opts = {}) => execFileSync(args[0], args.slice(1), { encoding: 'utf8', ...opts })
const inNs = (ns, args) => sh(['ip', 'netns', 'exec', ns, ...args])
const step = (msg) => process.stdout.write(`• ${msg}\n`)

function cleanup() {
  for (const ns of [SRV, CLI]) {
    try {
      sh(['ip', 'netns', 'del', ns], { stdio: 'ignore' })
    } catch {
      // not there
    }
  }
}

function setup() {
  cleanup()
  sh(['ip', 'netns', 'add', SRV])
  sh(['ip', 'netns', 'add', CLI])
  sh(['ip', 'link', 'add', 'demo-srv', 'netns', SRV, 'type', 'veth', 'peer', 'name', 'demo-cli', 'netns', CLI])
  for (const [ns, dev, v4, v6] of [
    [SRV, 'demo-srv', '192.0.2.1/24', '2001:db8::1/64'],
    [CLI, 'demo-cli', '192.0.2.2/24', '2001:db8::2/64'],
  ]) {
    sh(['ip', '-n', ns, 'addr', 'add', v4, 'dev', dev])
    sh(['ip', '-n', ns, 'addr', 'add', v6, 'dev', dev, 'nodad'])
    sh(['ip', '-n', ns, 'link', 'set', 'lo', 'up'])
    sh(['ip', '-n', ns, 'link', 'set', dev, 'up'])
  }
  inNs(CLI, ['sysctl', '-qw', 'net.ipv4.tcp_timestamps=0', 'net.ipv4.tcp_ecn=1'])
}

/** Runs the TCP_INFO server in the server namespace; resolves with one record per connection. */
function serve(count) {
  const child = spawn('ip', ['netns', 'exec', SRV, 'python3', path.join(root, 'scripts/tcpinfo.py'), 'serve', String(PORT), String(count)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const records = []
  let buf = ''
  const listening = new Promise((resolve) => {
    child.stdout.on('data', (d) => {
      buf += d
      let i
      while ((i = buf.indexOf('\n')) >= 0) {
        const rec = JSON.parse(buf.slice(0, i))
        buf = buf.slice(i + 1)
        if (rec.listening) resolve()
        else records.push(rec)
      }
    })
  })
  const done = new Promise((resolve, reject) => {
    const timer = setTimeout(() => child.kill(), 20_000)
    child.on('exit', (code) => {
      clearTimeout(timer)
      code === 0 ? resolve(records) : reject(new Error(`tcpinfo server exited ${code}`))
    })
  })
  return { listening, done }
}

function connect(host) {
  const out = inNs(CLI, ['python3', path.join(root, 'scripts/tcpinfo.py'), 'connect', host, String(PORT), String(CONNECTS), '3'])
  return JSON.parse(out.trim().split('\n').at(-1))
}

/** The agent must live in the server namespace: a worker process there, driven over IPC. */
function agentWorker() {
  const child = spawn('nsenter', [`--net=/run/netns/${SRV}`, process.execPath, path.join(root, 'test/helpers/nsworker.mjs')], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  let id = 0
  const pending = new Map()
  const ready = new Promise((resolve) => {
    child.on('message', (m) => {
      if (m.ready) return resolve()
      const p = pending.get(m.id)
      pending.delete(m.id)
      m.ok ? p.resolve(m.result) : p.reject(Object.assign(new Error(m.error.message), m.error))
    })
  })
  return {
    call: async (op, args) => {
      await ready
      return new Promise((resolve, reject) => {
        pending.set(++id, { resolve, reject })
        child.send({ id, op, args })
      })
    },
    kill: () => child.kill(),
  }
}

async function round(label, withAgent) {
  inNs(SRV, ['sysctl', '-qw', `net.ipv4.tcp_syncookies=${withAgent ? 1 : 2}`])
  const before = Number(inNs(SRV, ['nstat', '-asz', 'TcpExtSyncookiesSent']).match(/TcpExtSyncookiesSent\s+(\d+)/)[1])
  let worker = null
  if (withAgent) {
    worker = agentWorker()
    await worker.call('agent.create', { ports: [PORT] })
    await worker.call('agent.attach', 'demo-srv')
  }
  try {
    const server = serve(2 * CONNECTS)
    await server.listening
    const v4 = connect('192.0.2.1')
    const v6 = connect('2001:db8::1')
    const records = await server.done
    const after = Number(inNs(SRV, ['nstat', '-asz', 'TcpExtSyncookiesSent']).match(/TcpExtSyncookiesSent\s+(\d+)/)[1])
    const stats = worker ? await worker.call('agent.stats') : null
    step(`${label}: ${v4.connected + v6.connected}/${2 * CONNECTS} connected, kernel cookies sent: ${after - before}`)
    return { label, connected: v4.connected + v6.connected, records, kernelCookies: after - before, stats }
  } finally {
    if (worker) {
      await worker.call('agent.close').catch(() => undefined)
      worker.kill()
    }
  }
}

function summary(r) {
  const pick = (peerV6) => r.records.find((x) => x.peer.includes('2001:db8') === peerV6) ?? {}
  const fmt = (x) =>
    x.mss === undefined
      ? 'n/a'
      : `mss ${x.mss}, wscale ${x.wscale ? x.wscale.join('/') : 'none'}, sack ${x.sack ? 'yes' : 'no'}, ecn ${x.ecn ? 'yes' : 'no'}`
  return { v4: fmt(pick(false)), v6: fmt(pick(true)) }
}

async function main() {
  if (process.getuid?.() !== 0) {
    console.error('the demo creates network namespaces and loads a BPF program: run it as root')
    process.exit(1)
  }
  process.on('SIGINT', () => {
    cleanup()
    process.exit(130)
  })
  step(`namespaces ${SRV} and ${CLI}, veth demo-srv <-> demo-cli, 192.0.2.0/24 and 2001:db8::/64`)
  step('client: net.ipv4.tcp_timestamps=0, tcp_ecn=1 (asks for ECN)')
  setup()
  try {
    step(`kernel syncookies (tcp_syncookies=2: every SYN answered with a kernel cookie), ${CONNECTS} connects per family`)
    const kernel = await round('kernel syncookies', false)
    step(`syncookie-agent attached to demo-srv (tcx), ${CONNECTS} connects per family`)
    const agent = await round('syncookie-agent', true)

    cleanup()
    step(`flood: spoofed SYNs at the flooder's top rate for ${FLOOD_SECONDS} s, kernel syncookies, then the agent;`)
    step('       a legitimate client connects all along (sequential and 64 at a time, 1 s timeout)')
    const { runFlood } = await import('../bench/flood.mjs')
    const flood = await runFlood({ modes: ['kernel', 'agent'], rates: [0], seconds: FLOOD_SECONDS, baselineSeconds: 2, log: (m) => step(m) })
    const entry = (mode, flooded) => flood.entries.find((e) => e.mode === mode && (e.offeredPps === 'max') === flooded)

    const k = summary(kernel)
    const a = summary(agent)
    const kf = entry('kernel', true)
    const af = entry('agent', true)
    const p99 = (mode) => `${entry(mode, true).p99ConnectMs.toFixed(1)} ms (unflooded ${entry(mode, false).p99ConnectMs.toFixed(1)})`
    const rows = [
      ['', 'kernel syncookies', 'syncookie-agent'],
      ['client with timestamps off:', '', ''],
      ['  connections', `${kernel.connected}/${2 * CONNECTS}`, `${agent.connected}/${2 * CONNECTS}`],
      ['  IPv4 options kept', k.v4, a.v4],
      ['  IPv6 options kept', k.v6, a.v6],
      ['  kernel cookies sent', String(kernel.kernelCookies), String(agent.kernelCookies)],
      [`under a SYN flood (${FLOOD_SECONDS} s):`, '', ''],
      ['  flood reached', `${Math.round(kf.achievedPps / 1000)}k SYN/s`, `${Math.round(af.achievedPps / 1000)}k SYN/s`],
      ['  legitimate connects ok', `${kf.legitSuccess}% of ${kf.legitAttempts}`, `${af.legitSuccess}% of ${af.legitAttempts}`],
      ['  connect p99', p99('kernel'), p99('agent')],
      ['  server CPU per SYN', `${kf.cpuUsPerSyn?.toFixed(2) ?? 'n/a'} µs`, `${af.cpuUsPerSyn?.toFixed(2) ?? 'n/a'} µs`],
      ['  SYN-RECV sockets at the end', String(kf.synRecv), String(af.synRecv)],
    ]
    const w = [0, 1, 2].map((c) => Math.max(...rows.map((r) => r[c].length)))
    console.log('')
    for (const r of rows) console.log(`  ${r[0].padEnd(w[0])}  ${r[1].padEnd(w[1])}  ${r[2]}`)
    const s = agent.stats
    console.log(
      `\nagent counters: synReceived ${s.synReceived}, synAckSent ${s.synAckSent}, ackAccepted ${s.ackAccepted}, ` +
        `ackRejected ${s.ackRejected}, passEstablished ${s.passEstablished}`,
    )
    if (agent.connected !== 2 * CONNECTS) process.exitCode = 1
  } finally {
    cleanup()
    step('namespaces removed')
  }
}

main().catch((err) => {
  console.error(err)
  cleanup()
  process.exit(1)
})
