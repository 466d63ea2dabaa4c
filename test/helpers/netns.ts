/**
 * Network namespaces for kernel tests.
 *
 * A topology is two namespaces, `<prefix>-<pid>-srv` and `<prefix>-<pid>-cli`, joined by a veth
 * pair created directly inside them (`<prefix>-s` / `<prefix>-c`), so no host interface is ever
 * created, renamed or touched. The pid (of the test process) keeps two runs of the same file on
 * this shared machine (two engineers, or CI) out of each other's way; interface names need no
 * such tag since they live inside the namespaces. Addresses live only inside the namespaces:
 *
 *   server  192.0.2.1/24  2001:db8::1/64   (TEST-NET-1, documentation prefix)
 *   client  192.0.2.2/24  2001:db8::2/64
 *   raw     192.0.2.3     2001:db8::3      assigned to nothing: see {@link Topology.raw}
 *
 * Neighbours are static (no ARP/ND on the test path), IPv6 addresses use `nodad`.
 * Every name starts with the caller's prefix; {@link removeLeftovers} deletes what a crashed
 * run with the same prefix left behind (namespaces whose pid is no longer alive).
 */
import { accessSync, constants } from 'node:fs'
import { run, sleep, type RunOptions, type RunResult } from './exec.js'

/** One side of the veth pair. */
export interface Endpoint {
  /** Namespace name (under /run/netns). */
  ns: string
  /** The veth end inside `ns`. */
  dev: string
  /** MAC address of `dev`. */
  mac: string
  ip4: string
  ip6: string
}

/** Two namespaces and a veth pair; `destroy()` removes all of it. */
export interface Topology {
  prefix: string
  server: Endpoint
  client: Endpoint
  /**
   * Source addresses for raw packets sent from the client namespace (test/helpers/rawtcp.py).
   * They are routed to the client veth (static neighbours on the server point at the client's
   * MAC) but assigned to no interface, so the client kernel silently drops the replies instead
   * of answering them with RSTs, while an AF_PACKET socket on the client veth still sees them.
   */
  raw: { ip4: string; ip6: string; mac: string }
  /** Sum of tx_dropped of both veth ends (a drop means a retransmit may have happened). */
  drops(): Promise<number>
  /** Deletes both namespaces (and with them the veth pair). Safe to call twice. */
  destroy(): Promise<void>
}

export const SERVER_IP4 = '192.0.2.1'
export const CLIENT_IP4 = '192.0.2.2'
export const RAW_IP4 = '192.0.2.3'
export const SERVER_IP6 = '2001:db8::1'
export const CLIENT_IP6 = '2001:db8::2'
export const RAW_IP6 = '2001:db8::3'

const PREFIX_RE = /^[a-z][a-z0-9-]{0,11}$/

function checkPrefix(prefix: string): void {
  // The longest interface name is `${prefix}-s`: 12 + 2 = 14 ≤ IFNAMSIZ - 1.
  if (!PREFIX_RE.test(prefix)) {
    throw new RangeError(`netns prefix must match ${String(PREFIX_RE)}, got ${JSON.stringify(prefix)}`)
  }
}

/** `ip netns exec NS argv...` */
export function nsExec(ns: string, argv: readonly string[], opts?: RunOptions): Promise<RunResult> {
  return run(['ip', 'netns', 'exec', ns, ...argv], opts)
}

/** Reads (and, with `value`, first writes) a sysctl inside `ns`. Returns the value read. */
export async function sysctl(ns: string, key: string, value?: string | number): Promise<string> {
  if (value !== undefined) await nsExec(ns, ['sysctl', '-q', '-w', `${key}=${String(value)}`])
  const { stdout } = await nsExec(ns, ['sysctl', '-n', key])
  return stdout.trim().replace(/\s+/g, ' ')
}

/** Sets sysctls for the duration of fn, then restores the previous values. */
export async function withSysctls<T>(
  ns: string,
  values: Record<string, string | number>,
  fn: () => Promise<T>,
): Promise<T> {
  const saved: Record<string, string> = {}
  for (const key of Object.keys(values)) saved[key] = await sysctl(ns, key)
  try {
    for (const [key, value] of Object.entries(values)) await sysctl(ns, key, value)
    return await fn()
  } finally {
    for (const [key, value] of Object.entries(saved)) await sysctl(ns, key, value)
  }
}

/** `ethtool -K dev tx off` inside `ns`: the peer kernel then verifies every checksum it receives. */
export async function disableTxChecksum(ns: string, dev: string): Promise<void> {
  await nsExec(ns, ['ethtool', '-K', dev, 'tx', 'off'])
}

/** Whether tx checksumming is on (`ethtool -k`). */
export async function txChecksumOn(ns: string, dev: string): Promise<boolean> {
  const { stdout } = await nsExec(ns, ['ethtool', '-k', dev])
  const line = stdout.split('\n').find((l) => l.startsWith('tx-checksumming:'))
  if (line === undefined) throw new Error(`ethtool -k ${dev}: no tx-checksumming line`)
  return /:\s*on/.test(line)
}

interface IpLinkJson {
  ifname: string
  address?: string
  operstate?: string
  stats64?: {
    rx: { packets: number; dropped: number }
    tx: { packets: number; dropped: number }
  }
}

async function linkJson(ns: string, dev: string): Promise<IpLinkJson> {
  const { stdout } = await run(['ip', '-n', ns, '-j', '-s', 'link', 'show', 'dev', dev])
  const parsed = JSON.parse(stdout) as IpLinkJson[]
  const link = parsed[0]
  if (link === undefined) throw new Error(`ip link show ${dev} in ${ns}: nothing`)
  return link
}

/** Packet and drop counters of an interface. */
export interface LinkStats {
  rxPackets: number
  rxDropped: number
  txPackets: number
  txDropped: number
}

/** Counters of `dev` in `ns` (`ip -s link`). */
export async function linkStats(ns: string, dev: string): Promise<LinkStats> {
  const link = await linkJson(ns, dev)
  const s = link.stats64
  if (s === undefined) throw new Error(`ip -s link ${dev}: no stats64`)
  return { rxPackets: s.rx.packets, rxDropped: s.rx.dropped, txPackets: s.tx.packets, txDropped: s.tx.dropped }
}

/** tx_dropped of a veth end: packets the peer's backlog refused (so a retransmit happened). */
export async function vethTxDropped(ns: string, dev: string): Promise<number> {
  return (await linkStats(ns, dev)).txDropped
}

/** Names of namespaces that exist now (`ip netns list`). */
export async function listNamespaces(): Promise<string[]> {
  const { stdout } = await run(['ip', '-j', 'netns', 'list'])
  if (stdout.trim() === '') return []
  return (JSON.parse(stdout) as { name: string }[]).map((n) => n.name)
}

/**
 * Deletes a namespace: first kills the processes still inside it (a crashed run's workers, by
 * pid, only in namespaces with our prefix), then `ip netns del`.
 */
async function deleteNamespace(ns: string): Promise<void> {
  try {
    const { stdout } = await run(['ip', 'netns', 'pids', ns])
    for (const pid of stdout.split(/\s+/).filter(Boolean).map(Number)) {
      if (Number.isInteger(pid) && pid > 1 && pid !== process.pid) {
        try {
          process.kill(pid, 'SIGKILL')
        } catch {
          // already gone
        }
      }
    }
  } catch {
    // namespace already half gone
  }
  await run(['ip', 'netns', 'del', ns]).catch(() => undefined)
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** The name of a namespace of this process: `${prefix}-${pid}-${role}`. */
export function namespaceName(prefix: string, role: string, pid = process.pid): string {
  return `${prefix}-${pid}-${role}`
}

/**
 * Removes the namespaces `${prefix}-<pid>-*` whose test process is gone (a crashed run), and
 * those of this very process (a topology it did not destroy). A live run's are left alone.
 */
export async function removeLeftovers(prefix: string): Promise<string[]> {
  checkPrefix(prefix)
  const re = new RegExp(`^${prefix}-(\\d+)-[a-z0-9]+$`) // prefix is [a-z0-9-] only
  const stale = (await listNamespaces()).filter((n) => {
    const m = re.exec(n)
    if (m?.[1] === undefined) return false
    const pid = Number(m[1])
    return pid === process.pid || !alive(pid)
  })
  for (const ns of stale) await deleteNamespace(ns)
  return stale
}

async function ip(ns: string, ...args: string[]): Promise<void> {
  await run(['ip', '-n', ns, ...args])
}

async function waitUp(ns: string, dev: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const link = await linkJson(ns, dev)
    if (link.operstate === 'UP') return
    await sleep(20)
  }
  throw new Error(`${dev} in ${ns} did not come up within 2 s`)
}

/** Creates an empty namespace with `lo` up. */
export async function createNamespace(ns: string): Promise<void> {
  await run(['ip', 'netns', 'add', ns])
  await ip(ns, 'link', 'set', 'lo', 'up')
}

const destroyers = new Set<() => Promise<void>>()

/**
 * Creates `<prefix>-<pid>-srv` and `<prefix>-<pid>-cli` joined by a veth pair, after removing
 * leftovers of the same prefix. Register `topology.destroy()` in afterAll (see {@link destroyAllTopologies}).
 */
export async function createTopology(prefix: string): Promise<Topology> {
  checkPrefix(prefix)
  await removeLeftovers(prefix)
  const srv = namespaceName(prefix, 'srv')
  const cli = namespaceName(prefix, 'cli')
  const sdev = `${prefix}-s`
  const cdev = `${prefix}-c`
  let destroyed = false
  const destroy = async (): Promise<void> => {
    if (destroyed) return
    destroyed = true
    destroyers.delete(destroy)
    await deleteNamespace(srv)
    await deleteNamespace(cli)
  }
  destroyers.add(destroy)
  try {
    await createNamespace(srv)
    await createNamespace(cli)
    await ip(srv, 'link', 'add', sdev, 'type', 'veth', 'peer', 'name', cdev, 'netns', cli)
    const smac = (await linkJson(srv, sdev)).address
    const cmac = (await linkJson(cli, cdev)).address
    if (smac === undefined || cmac === undefined) throw new Error('veth without a MAC address')
    await ip(srv, 'addr', 'add', `${SERVER_IP4}/24`, 'dev', sdev)
    await ip(srv, 'addr', 'add', `${SERVER_IP6}/64`, 'dev', sdev, 'nodad')
    await ip(cli, 'addr', 'add', `${CLIENT_IP4}/24`, 'dev', cdev)
    await ip(cli, 'addr', 'add', `${CLIENT_IP6}/64`, 'dev', cdev, 'nodad')
    for (const addr of [CLIENT_IP4, CLIENT_IP6, RAW_IP4, RAW_IP6]) {
      await ip(srv, 'neigh', 'replace', addr, 'lladdr', cmac, 'dev', sdev, 'nud', 'permanent')
    }
    for (const addr of [SERVER_IP4, SERVER_IP6]) {
      await ip(cli, 'neigh', 'replace', addr, 'lladdr', smac, 'dev', cdev, 'nud', 'permanent')
    }
    await ip(srv, 'link', 'set', sdev, 'up')
    await ip(cli, 'link', 'set', cdev, 'up')
    await waitUp(srv, sdev)
    await waitUp(cli, cdev)
    const server: Endpoint = { ns: srv, dev: sdev, mac: smac, ip4: SERVER_IP4, ip6: SERVER_IP6 }
    const client: Endpoint = { ns: cli, dev: cdev, mac: cmac, ip4: CLIENT_IP4, ip6: CLIENT_IP6 }
    const drops = async (): Promise<number> =>
      (await vethTxDropped(srv, sdev)) + (await vethTxDropped(cli, cdev))
    return { prefix, server, client, raw: { ip4: RAW_IP4, ip6: RAW_IP6, mac: cmac }, drops, destroy }
  } catch (err) {
    await destroy()
    throw err
  }
}

/** Destroys every topology this process created and has not destroyed yet. */
export async function destroyAllTopologies(): Promise<void> {
  for (const destroy of [...destroyers]) await destroy()
}

// ---------------------------------------------------------------------------------------------
// ss -tinoa parsing

/** One TCP socket as `ss -tinoa` shows it. */
export interface SsSocket {
  state: string
  local: { addr: string; port: number }
  peer: { addr: string; port: number }
  /** Negotiated options (server view when read in the server namespace). */
  ts: boolean
  sack: boolean
  ecn: boolean
  ecnseen: boolean
  /** [snd_wscale, rcv_wscale], absent when window scaling was not negotiated. */
  wscale?: [number, number]
  mss?: number
  /** The info line as printed, for assertion messages. */
  info: string
}

function splitHostPort(s: string): { addr: string; port: number } {
  const i = s.lastIndexOf(':')
  let addr = s.slice(0, i)
  const portText = s.slice(i + 1)
  if (addr.startsWith('[') && addr.endsWith(']')) addr = addr.slice(1, -1)
  addr = addr.replace(/%.*$/, '')
  if (addr.startsWith('::ffff:') && addr.includes('.')) addr = addr.slice('::ffff:'.length)
  return { addr, port: portText === '*' ? 0 : Number(portText) }
}

/** Parses `ss -tinoaH` output (exported for the harness self-test). */
export function parseSs(text: string): SsSocket[] {
  const out: SsSocket[] = []
  let current: SsSocket | undefined
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue
    if (/^\s/.test(line)) {
      if (current === undefined) continue
      const tokens = line.trim().split(/\s+/)
      current.info = line.trim()
      current.ts = tokens.includes('ts')
      current.sack = tokens.includes('sack')
      current.ecn = tokens.includes('ecn')
      current.ecnseen = tokens.includes('ecnseen')
      for (const t of tokens) {
        const ws = /^wscale:(\d+),(\d+)$/.exec(t)
        if (ws) current.wscale = [Number(ws[1]), Number(ws[2])]
        const mss = /^mss:(\d+)$/.exec(t)
        if (mss) current.mss = Number(mss[1])
      }
      continue
    }
    const cols = line.trim().split(/\s+/)
    // State Recv-Q Send-Q Local Peer [timer:(...)]
    const [state, , , local, peer] = cols
    if (state === undefined || local === undefined || peer === undefined) continue
    current = {
      state,
      local: splitHostPort(local),
      peer: splitHostPort(peer),
      ts: false,
      sack: false,
      ecn: false,
      ecnseen: false,
      info: '',
    }
    out.push(current)
  }
  return out
}

/** All TCP sockets in `ns` with their options (`ss -tinoaH`). */
export async function ssTcp(ns: string): Promise<SsSocket[]> {
  const { stdout } = await nsExec(ns, ['ss', '-tinoaH'])
  return parseSs(stdout)
}

/** The socket in `ns` with this local/peer pair, if any (any state but LISTEN). */
export async function findSocket(
  ns: string,
  local: { addr: string; port: number },
  peer: { addr: string; port: number },
): Promise<SsSocket | undefined> {
  return (await ssTcp(ns)).find(
    (s) =>
      s.state !== 'LISTEN' &&
      s.local.addr === local.addr &&
      s.local.port === local.port &&
      s.peer.addr === peer.addr &&
      s.peer.port === peer.port,
  )
}

// ---------------------------------------------------------------------------------------------
// nstat

/** Absolute SNMP/netstat counters of a namespace (`nstat -az`), e.g. TcpExtSyncookiesSent. */
export type Nstat = Record<string, number>

/** Parses `nstat -az` output (exported for the harness self-test). */
export function parseNstat(text: string): Nstat {
  const out: Nstat = {}
  for (const line of text.split('\n')) {
    const m = /^(\w+)\s+(\d+)/.exec(line)
    if (m?.[1] !== undefined && m[2] !== undefined) out[m[1]] = Number(m[2])
  }
  return out
}

/** `nstat -az` in `ns` (history disabled so runs do not see each other's deltas). */
export async function nstat(ns: string): Promise<Nstat> {
  const { stdout } = await nsExec(ns, ['nstat', '-a', '-z', '-s'], {
    env: { NSTAT_HISTORY: '/dev/null' },
  })
  return parseNstat(stdout)
}

/** Counter `name` (0 if the kernel does not print it). */
export function counter(n: Nstat, name: string): number {
  return n[name] ?? 0
}

// ---------------------------------------------------------------------------------------------
// skipping

/**
 * Why kernel tests cannot run here, or undefined when they can. Only two reasons count: not
 * root, or no kernel BTF. Anything else missing is a failure, not a skip.
 */
export function kernelSkipReason(): string | undefined {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    return 'kernel tests need root (namespaces, veth, BPF)'
  }
  try {
    accessSync('/sys/kernel/btf/vmlinux', constants.R_OK)
  } catch {
    return 'kernel tests need /sys/kernel/btf/vmlinux (a kernel built with BTF)'
  }
  return undefined
}
