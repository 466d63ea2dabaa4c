/**
 * TypeScript side of test/helpers/rawtcp.py: hand-made SYNs and ACKs sent from the client
 * namespace with a source address no interface owns (Topology.raw), so the client kernel stays
 * out of the handshake.
 */
import path from 'node:path'
import { nsExec, type Topology } from './netns.js'

const RAWTCP = path.resolve(__dirname, 'rawtcp.py')

/** A TCP segment the sniffer saw (from the server to the raw source). */
export interface Segment {
  seq: number
  ack: number
  flags: number
  window: number
  options: { mss?: number; wscale?: number; sack?: boolean; tsval?: number; tsecr?: number }
}

/** What `rawtcp.py syn` saw. */
export interface SynResult {
  /** How many SYNs were sent (a lost SYN or SYN-ACK is sent again, up to `tries`). */
  tries: number
  isn: number
  synack: Segment | null
  rst: Segment | null
}

export const TCP_FLAGS = { FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10, ECE: 0x40, CWR: 0x80 }

/** Addressing of one raw flow. */
export interface RawFlow {
  family: 4 | 6
  sport: number
  dport: number
}

function baseArgs(topo: Topology, flow: RawFlow): string[] {
  return [
    '--dev', topo.client.dev,
    '--src-mac', topo.raw.mac,
    '--dst-mac', topo.server.mac,
    '--src', flow.family === 4 ? topo.raw.ip4 : topo.raw.ip6,
    '--dst', flow.family === 4 ? topo.server.ip4 : topo.server.ip6,
    '--sport', String(flow.sport),
    '--dport', String(flow.dport),
  ]
}

/** Sends a SYN (MSS 1460, SACK-permitted, window scale 7, no timestamps) and waits for the SYN-ACK. */
export async function rawSyn(
  topo: Topology,
  flow: RawFlow,
  opts: { isn?: number; ts?: boolean; tries?: number; timeoutMs?: number } = {},
): Promise<SynResult> {
  const args = [...baseArgs(topo, flow), '--sack', '--wscale', '7']
  if (opts.isn !== undefined) args.push('--isn', String(opts.isn))
  if (opts.ts === true) args.push('--ts')
  args.push('--tries', String(opts.tries ?? 3), '--timeout-ms', String(opts.timeoutMs ?? 1000))
  const { stdout } = await nsExec(topo.client.ns, ['python3', RAWTCP, 'syn', ...args], { timeoutMs: 30_000 })
  return JSON.parse(stdout) as SynResult
}

/** Sends one ACK segment (seq/ack as given, optional payload). */
export async function rawAck(
  topo: Topology,
  flow: RawFlow,
  seg: { seq: number; ack: number; payload?: Buffer; tsval?: number; tsecr?: number },
): Promise<void> {
  const args = [...baseArgs(topo, flow), '--seq', String(seg.seq >>> 0), '--ack', String(seg.ack >>> 0)]
  if (seg.payload !== undefined) args.push('--payload-hex', seg.payload.toString('hex'))
  if (seg.tsval !== undefined) args.push('--tsval', String(seg.tsval), '--tsecr', String(seg.tsecr ?? 0))
  await nsExec(topo.client.ns, ['python3', RAWTCP, 'ack', ...args])
}

/** (x + n) mod 2^32 */
export function seqAdd(x: number, n: number): number {
  return (x + n) >>> 0
}
