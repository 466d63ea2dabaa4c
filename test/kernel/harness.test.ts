/**
 * The kernel test harness checked against the plain kernel, no agent: if these fail, the agent
 * tests' failures mean nothing. Namespaces, veth, handshakes with data both ways, ss/nstat
 * parsing, raw segments, the tcx query, unprivileged workers, cleanup.
 */
import { beforeAll, expect, it } from 'vitest'
import { holdDummyTcx, tcIngressFilters, tcxIngress, progsExist, bpftoolNetShow } from '../helpers/bpf.js'
import { run, poll, sleep } from '../helpers/exec.js'
import { describeKernel, registerCleanup, setupKernelEnv, type KernelEnv } from '../helpers/kernel.js'
import {
  counter,
  createNamespace,
  disableTxChecksum,
  findSocket,
  listNamespaces,
  namespaceName,
  nstat,
  parseSs,
  removeLeftovers,
  ssTcp,
  sysctl,
  txChecksumOn,
  withSysctls,
} from '../helpers/netns.js'
import { rawAck, rawSyn, seqAdd, TCP_FLAGS } from '../helpers/raw.js'
import { NsWorker } from '../helpers/worker.js'

const PREFIX = 'sca-hn'
const MiB = 1024 * 1024

describeKernel('kernel test harness (plain kernel, no agent)', () => {
  let env: KernelEnv
  registerCleanup()

  beforeAll(async () => {
    env = await setupKernelEnv(PREFIX)
    await env.server.listen({ host: env.topo.server.ip4, port: 7001, mode: 'echo-bulk' })
    await env.server.listen({ host: env.topo.server.ip6, port: 7001, mode: 'echo-bulk' })
    await env.server.listen({ host: env.topo.server.ip4, port: 7002, mode: 'hold' })
    await env.server.listen({ host: env.topo.server.ip6, port: 7002, mode: 'hold' })
  })

  it('creates namespaces and a veth pair only inside them', async () => {
    const names = await listNamespaces()
    expect(names).toContain(namespaceName(PREFIX, 'srv'))
    expect(names).toContain(namespaceName(PREFIX, 'cli'))
    const host = await run(['ip', '-j', 'link', 'show'])
    const hostNames = (JSON.parse(host.stdout) as { ifname: string }[]).map((l) => l.ifname)
    expect(hostNames.filter((n) => n.startsWith(PREFIX))).toEqual([])
    const ping = await env.server.call<{ netns: string }>('ping')
    const hostNs = (await run(['readlink', '/proc/self/ns/net'])).stdout.trim()
    expect(ping.netns).not.toBe(hostNs)
  })

  it('removes leftovers of a crashed run with the same prefix, not those of a live run', async () => {
    const prefix = `${PREFIX}y`
    let deadPid = 4_194_000
    while (deadPid < 4_194_304 && (await run(['test', '-e', `/proc/${deadPid}`]).then(() => true, () => false))) deadPid++
    const crashed = namespaceName(prefix, 'srv', deadPid)
    const live = namespaceName(prefix, 'srv', process.ppid)
    await createNamespace(crashed)
    await createNamespace(live)
    try {
      expect(await removeLeftovers(prefix)).toEqual([crashed])
      const names = await listNamespaces()
      expect(names).not.toContain(crashed)
      expect(names).toContain(live)
    } finally {
      await run(['ip', 'netns', 'del', live]).catch(() => undefined)
      await run(['ip', 'netns', 'del', crashed]).catch(() => undefined)
    }
  })

  for (const family of [4, 6] as const) {
    it(`IPv${family}: 1 MiB each way, verified, and the server holds TIME_WAIT`, async () => {
      const host = family === 4 ? env.topo.server.ip4 : env.topo.server.ip6
      const r = await env.client.connect({ host, port: 7001, bytes: MiB, timeoutMs: 10_000 })
      expect(r, JSON.stringify(r)).toMatchObject({ ok: true })
      const tw = await poll(async () => {
        const s = await findSocket(
          env.topo.server.ns,
          { addr: host, port: 7001 },
          { addr: family === 4 ? env.topo.client.ip4 : env.topo.client.ip6, port: r.localPort ?? -1 },
        )
        return s?.state === 'TIME-WAIT' ? s : undefined
      }, { timeoutMs: 2_000 })
      expect(tw?.state).toBe('TIME-WAIT')
      const info = await env.server.listenerInfo(host, 7001)
      expect(info.verifyErrors).toBe(0)
    })
  }

  it('a payload mismatch is detected (the server checks every byte)', async () => {
    // A hand-written client that sends a header and wrong bytes: the server must drop it.
    const before = await env.server.listenerInfo(env.topo.server.ip4, 7001)
    await run([
      'ip', 'netns', 'exec', env.topo.client.ns, 'python3', '-c',
      'import socket,struct,time\n' +
        `s=socket.create_connection(("${env.topo.server.ip4}",7001))\n` +
        's.sendall(struct.pack("!II",64,1)+b"\\x00"*64)\ntime.sleep(0.3)\ns.close()\n',
    ])
    const after = await poll(async () => {
      const i = await env.server.listenerInfo(env.topo.server.ip4, 7001)
      return i.verifyErrors > before.verifyErrors ? i : undefined
    }, { timeoutMs: 2_000 })
    expect(after?.verifyErrors).toBe(before.verifyErrors + 1)
  })

  it('ss -tino shows ts, sack, wscale and mss of the server socket; no ts when the client disables it', async () => {
    const cases = [
      { family: 4, sysctls: {}, ts: true, ecn: false, mss: 1448 },
      { family: 6, sysctls: {}, ts: true, ecn: false, mss: 1428 },
      { family: 4, sysctls: { 'net.ipv4.tcp_timestamps': 0 }, ts: false, ecn: false, mss: 1460 },
      { family: 4, sysctls: { 'net.ipv4.tcp_ecn': 1 }, ts: true, ecn: true, mss: 1448 },
      { family: 6, sysctls: { 'net.ipv4.tcp_timestamps': 0, 'net.ipv4.tcp_ecn': 1 }, ts: false, ecn: true, mss: 1440 },
    ] as const
    for (const c of cases) {
      const host = c.family === 4 ? env.topo.server.ip4 : env.topo.server.ip6
      const clientAddr = c.family === 4 ? env.topo.client.ip4 : env.topo.client.ip6
      const r = await withSysctls(env.topo.client.ns, c.sysctls, () =>
        env.client.connect({ host, port: 7002, bytes: 4096, hold: true }),
      )
      expect(r.ok, JSON.stringify(r)).toBe(true)
      const s = await findSocket(env.topo.server.ns, { addr: host, port: 7002 }, { addr: clientAddr, port: r.localPort ?? -1 })
      const label = `${JSON.stringify(c)} → ${s?.info ?? 'no socket'}`
      expect(s?.state, label).toBe('ESTAB')
      expect(s?.ts, label).toBe(c.ts)
      expect(s?.sack, label).toBe(true)
      expect(s?.ecn, label).toBe(c.ecn)
      expect(s?.wscale, label).toBeDefined()
      expect(s?.mss, label).toBe(c.mss)
    }
  })

  it('parses ss output with IPv4, IPv6 and mapped addresses', () => {
    const text =
      'ESTAB 0 0 [::ffff:192.0.2.1]:8080 [::ffff:192.0.2.2]:40000\n' +
      '\t ts sack ecn bbr wscale:10,7 rto:204 mss:1448 pmtu:1500\n' +
      'TIME-WAIT 0 0 [2001:db8::1]:8080 [2001:db8::2]:40001 timer:(timewait,59sec,0)\n' +
      '\t\n'
    const [a, b] = parseSs(text)
    expect(a).toMatchObject({
      state: 'ESTAB', local: { addr: '192.0.2.1', port: 8080 }, peer: { addr: '192.0.2.2', port: 40000 },
      ts: true, sack: true, ecn: true, ecnseen: false, wscale: [10, 7], mss: 1448,
    })
    expect(b).toMatchObject({ state: 'TIME-WAIT', local: { addr: '2001:db8::1', port: 8080 }, ts: false })
  })

  it('nstat -az reads the counters the agent tests compare', async () => {
    const n = await nstat(env.topo.server.ns)
    for (const name of ['TcpExtSyncookiesSent', 'TcpExtSyncookiesRecv', 'TcpExtTCPACKSkippedTimeWait', 'TcpInCsumErrors']) {
      expect(n, name).toHaveProperty(name)
    }
    expect(counter(n, 'TcpExtSyncookiesSent')).toBe(0)
    expect(counter(n, 'TcpInCsumErrors')).toBe(0)
    expect(counter(n, 'TcpPassiveOpens')).toBeGreaterThan(0)
  })

  it('sysctl reads and writes per namespace', async () => {
    expect(await sysctl(env.topo.server.ns, 'net.ipv4.tcp_syncookies')).toBe('1')
    await withSysctls(env.topo.client.ns, { 'net.ipv4.ip_local_port_range': '40000 40099' }, async () => {
      expect(await sysctl(env.topo.client.ns, 'net.ipv4.ip_local_port_range')).toBe('40000 40099')
    })
    expect(await sysctl(env.topo.client.ns, 'net.ipv4.ip_local_port_range')).toBe('32768 60999')
  })

  it('many connects, sequential and concurrent, with statistics', async () => {
    const seq = await env.client.connectMany({ host: env.topo.server.ip4, port: 7001, count: 300, concurrency: 1, bytes: 16 }, 60_000)
    expect(seq, JSON.stringify(seq)).toMatchObject({ ok: 300, failed: 0 })
    const par = await env.client.connectMany({ host: env.topo.server.ip6, port: 7001, count: 300, concurrency: 32, bytes: 16 }, 60_000)
    expect(par, JSON.stringify(par)).toMatchObject({ ok: 300, failed: 0 })
    expect(par.p99).toBeGreaterThanOrEqual(par.p50)
    const refused = await env.client.connectMany({ host: env.topo.server.ip4, port: 7999, count: 3, bytes: 16 }, 10_000)
    expect(refused).toMatchObject({ ok: 0, failed: 3, errors: { ECONNREFUSED: 3 } })
  })

  it('reconnects from one fixed source port onto the server TIME_WAIT tuple', async () => {
    const before = await nstat(env.topo.server.ns)
    for (let i = 0; i < 5; i++) {
      const r = await env.client.connect({ host: env.topo.server.ip4, port: 7001, localPort: 45123, bytes: 1000 })
      expect(r, `connect #${i}: ${JSON.stringify(r)}`).toMatchObject({ ok: true, localPort: 45123 })
      // The client end goes LAST_ACK → CLOSED within a round trip; wait so the next bind succeeds.
      await poll(async () => {
        const s = await findSocket(env.topo.client.ns, { addr: env.topo.client.ip4, port: 45123 }, { addr: env.topo.server.ip4, port: 7001 })
        return s === undefined ? true : undefined
      }, { timeoutMs: 2_000 })
    }
    const after = await nstat(env.topo.server.ns)
    expect(counter(after, 'TcpExtTCPACKSkippedTimeWait') - counter(before, 'TcpExtTCPACKSkippedTimeWait')).toBe(0)
    expect(counter(after, 'TcpExtTWRecycled') + counter(after, 'TcpExtTCPTimeWaitOverflow')).toBeGreaterThanOrEqual(0)
  })

  it('with tx checksum offload off on the client veth, handshakes still work and no checksum error is counted', async () => {
    // Runs on its own pair of namespaces so the offload change does not leak into other tests.
    const { createTopology } = await import('../helpers/netns.js')
    const topo = await createTopology(`${PREFIX}x`)
    const server = await NsWorker.start(topo.server.ns)
    const client = await NsWorker.start(topo.client.ns)
    try {
      await disableTxChecksum(topo.client.ns, topo.client.dev)
      expect(await txChecksumOn(topo.client.ns, topo.client.dev)).toBe(false)
      await server.listen({ host: topo.server.ip4, port: 7001 })
      await server.listen({ host: topo.server.ip6, port: 7001 })
      for (const host of [topo.server.ip4, topo.server.ip6]) {
        const r = await client.connect({ host, port: 7001, bytes: MiB })
        expect(r.ok, JSON.stringify(r)).toBe(true)
      }
      expect(counter(await nstat(topo.client.ns), 'TcpInCsumErrors')).toBe(0)
      expect(counter(await nstat(topo.server.ns), 'TcpInCsumErrors')).toBe(0)
    } finally {
      client.kill()
      server.kill()
      await topo.destroy()
    }
  })

  it('raw SYN from an unassigned source gets a SYN-ACK, the raw ACK completes the handshake', async () => {
    for (const family of [4, 6] as const) {
      const sport = family === 4 ? 51001 : 51002
      const host = family === 4 ? env.topo.server.ip4 : env.topo.server.ip6
      const rawAddr = family === 4 ? env.topo.raw.ip4 : env.topo.raw.ip6
      const before = await env.server.listenerInfo(host, 7002)
      const syn = await rawSyn(env.topo, { family, sport, dport: 7002 })
      expect(syn.synack, JSON.stringify(syn)).not.toBeNull()
      expect(syn.synack?.ack).toBe(seqAdd(syn.isn, 1))
      expect(syn.synack?.options).toMatchObject({ mss: family === 4 ? 1460 : 1440, sack: true })
      // The client kernel must not have reset the SYN-ACK: the server still has the request.
      await rawAck(env.topo, { family, sport, dport: 7002 }, { seq: seqAdd(syn.isn, 1), ack: seqAdd(syn.synack?.seq ?? 0, 1) })
      const s = await poll(async () => {
        const x = await findSocket(env.topo.server.ns, { addr: host, port: 7002 }, { addr: rawAddr, port: sport })
        return x?.state === 'ESTAB' ? x : undefined
      }, { timeoutMs: 2_000 })
      expect(s?.state, `IPv${family}`).toBe('ESTAB')
      const after = await poll(async () => {
        const i = await env.server.listenerInfo(host, 7002)
        return i.accepted > before.accepted ? i : undefined
      }, { timeoutMs: 2_000 })
      expect(after?.accepted).toBe(before.accepted + 1)
    }
  })

  it('a forged raw ACK makes no connection', async () => {
    const sport = 51003
    const before = await env.server.listenerInfo(env.topo.server.ip4, 7002)
    await rawAck(env.topo, { family: 4, sport, dport: 7002 }, { seq: 12345, ack: 0x5eed1234 })
    await sleep(200)
    const s = await findSocket(env.topo.server.ns, { addr: env.topo.server.ip4, port: 7002 }, { addr: env.topo.raw.ip4, port: sport })
    expect(s).toBeUndefined()
    expect((await env.server.listenerInfo(env.topo.server.ip4, 7002)).accepted).toBe(before.accepted)
    expect(TCP_FLAGS.RST).toBe(4)
  })

  it('the tcx query sees a tcx program that bpftool does not, and the link dies with its process', async () => {
    const { ns, dev } = env.topo.server
    expect(await tcxIngress(ns, dev)).toEqual([])
    const hold = await holdDummyTcx(ns, dev)
    try {
      const progs = await tcxIngress(ns, dev)
      expect(progs).toEqual([{ id: hold.progId, name: 'sca_test_dummy', type: 3 }])
      expect((await bpftoolNetShow(ns, dev)).tc).toEqual([])
      expect(await tcIngressFilters(ns, dev)).toBe('')
    } finally {
      hold.child.kill('SIGKILL')
    }
    const gone = await poll(async () => ((await tcxIngress(ns, dev)).length === 0 ? true : undefined), { timeoutMs: 3_000 })
    expect(gone).toBe(true)
    const exists = await poll(async () => {
      const e = await progsExist([hold.progId])
      return e[String(hold.progId)] === false ? e : undefined
    }, { timeoutMs: 3_000 })
    expect(exists).toEqual({ [String(hold.progId)]: false })
  })

  it('runs a worker as an unprivileged user with no capabilities', async () => {
    const w = await NsWorker.start(env.topo.server.ns, { unprivileged: { uid: 65534, gid: 65534 } })
    try {
      const ping = await w.call<{ uid: number }>('ping')
      expect(ping.uid).toBe(65534)
      const status = (await run(['cat', `/proc/${String(w.pid)}/status`])).stdout
      expect(status).toMatch(/^CapEff:\s+0+$/m)
      expect(status).toMatch(/^CapBnd:\s+0+$/m)
    } finally {
      w.kill()
    }
  })

  it('reports errors thrown in the worker with name and code', async () => {
    await expect(env.server.call('agent.stats')).rejects.toMatchObject({ name: 'Error', message: expect.stringMatching(/no agent/) })
    await expect(env.server.call('tcp.listen', { host: env.topo.server.ip4, port: 7001 })).rejects.toThrow(/already listening/)
    await expect(env.server.call('no.such.op')).rejects.toThrow(/unknown op/)
    expect((await ssTcp(env.topo.server.ns)).some((s) => s.state === 'LISTEN')).toBe(true)
  })
})
