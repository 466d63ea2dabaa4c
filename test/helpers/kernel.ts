/**
 * Glue for kernel test files: skipping, one topology plus workers per file, cleanup in afterAll
 * even when a test failed, and arithmetic on agent counters.
 */
import { existsSync } from 'node:fs'
import { afterAll, describe, expect } from 'vitest'
import { createTopology, destroyAllTopologies, kernelSkipReason, type Topology } from './netns.js'
import { DIST_INDEX, killAllWorkers, NsWorker, type AgentStats } from './worker.js'

/** Why this machine cannot run kernel tests (undefined: it can, and they must pass). */
export const SKIP_REASON = kernelSkipReason()

if (SKIP_REASON !== undefined) {
  console.warn(`[kernel tests] skipped: ${SKIP_REASON}`)
}

/** `describe` that is skipped, with the reason in its name, only when {@link SKIP_REASON} says so. */
export function describeKernel(name: string, fn: () => void): void {
  const title = SKIP_REASON === undefined ? name : `${name} [skipped: ${SKIP_REASON}]`
  describe.skipIf(SKIP_REASON !== undefined)(title, fn)
}

/** Fails with a clear message when the agent has not been built. */
export function requireDist(): void {
  if (!existsSync(DIST_INDEX)) {
    throw new Error(`${DIST_INDEX} is missing: run \`npm run build\` before the agent kernel tests`)
  }
}

/** One test file's namespaces and the workers living in them. */
export interface KernelEnv {
  topo: Topology
  /** Worker in the server namespace (agent + listeners). */
  server: NsWorker
  /** Worker in the client namespace (connects). */
  client: NsWorker
}

/**
 * Creates the topology and the two workers, and registers their cleanup (workers killed,
 * namespaces deleted) in afterAll. Call inside `beforeAll`; `afterAll` is registered by
 * {@link registerCleanup}, which must be called at describe level.
 */
export async function setupKernelEnv(prefix: string): Promise<KernelEnv> {
  const topo = await createTopology(prefix)
  const server = await NsWorker.start(topo.server.ns)
  const client = await NsWorker.start(topo.client.ns)
  return { topo, server, client }
}

/** Registers the afterAll that kills every worker and deletes every namespace of this file. */
export function registerCleanup(): void {
  afterAll(async () => {
    killAllWorkers()
    await destroyAllTopologies()
  }, 30_000)
}

/** Every name in bpf/syncookie.h SC_STATS, in order (the TS field names): lib/layout.ts's list. */
export { STAT_NAMES, type StatName } from '../../lib/layout.js'
import { STAT_NAMES, type StatName } from '../../lib/layout.js'

/** after - before for every counter in either (missing counts as 0). */
export function statsDelta(before: AgentStats, after: AgentStats): AgentStats {
  const out: AgentStats = {}
  for (const k of new Set([...Object.keys(before), ...Object.keys(after)])) {
    out[k] = (after[k] ?? 0n) - (before[k] ?? 0n)
  }
  return out
}

/** Only the counters that moved, for assertion messages. */
export function moved(delta: AgentStats): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(delta)) if (v !== 0n) out[k] = v.toString()
  return out
}

/** The named counters of a delta (0n when absent). */
export function pick(delta: AgentStats, names: readonly string[]): Record<string, bigint> {
  const out: Record<string, bigint> = {}
  for (const n of names) out[n] = delta[n] ?? 0n
  return out
}

/** A measured step: what the agent's counters and the veth drop counters did around it. */
export interface Measured<T> {
  result: T
  delta: AgentStats
  /** Packets dropped on the veth ends (or lo) during the step: retransmits may have happened. */
  drops: number
}

/**
 * Runs fn between two stats() reads of `agent` and two reads of `drops()`.
 */
export async function measure<T>(
  agent: NsWorker,
  drops: () => Promise<number>,
  fn: () => Promise<T>,
): Promise<Measured<T>> {
  const d0 = await drops()
  const s0 = await agent.stats()
  const result = await fn()
  const s1 = await agent.stats()
  const d1 = await drops()
  return { result, delta: statsDelta(s0, s1), drops: d1 - d0 }
}

/** Counters that a retransmitted SYN (after a drop) may legitimately move more than once. */
const RETRANSMIT_TOLERANT = new Set(['synReceived', 'synAckSent', 'synExistingSocket', 'passEstablished', 'passOther'])

/**
 * Asserts that the named counters moved by exactly `expected`. When packets were dropped on the
 * way (shared per-CPU backlog), SYN counters may be higher by retransmits: they are then checked
 * as lower bounds, and the message says so; every other counter stays exact.
 */
export function expectCounters(
  m: Measured<unknown>,
  expected: Partial<Record<StatName, bigint>>,
  what: string,
): void {
  const names = Object.keys(expected) as StatName[]
  const got = pick(m.delta, names)
  const ctx = `${what}: counters moved ${JSON.stringify(moved(m.delta))}, ${m.drops} packet(s) dropped on the link`
  if (m.drops === 0) {
    expect(got, `${ctx} (nothing dropped: exact)`).toEqual(expected)
    return
  }
  for (const n of names) {
    const want = expected[n] ?? 0n
    if (RETRANSMIT_TOLERANT.has(n)) {
      expect(got[n]! >= want, `${ctx}; ${n} must be >= ${want} (retransmits after drops may add)`).toBe(true)
    } else {
      expect(got[n], `${ctx}; ${n} stays exact even with drops`).toBe(want)
    }
  }
}

/** Every counter of the delta must be 0. */
export function expectNoCounterMoved(m: Measured<unknown>, what: string): void {
  expect(moved(m.delta), `${what}: no counter may move (${m.drops} packet(s) dropped)`).toEqual({})
}

/** Creates the agent in the server worker with `ports` and attaches it to the server veth. */
export async function startAgent(env: KernelEnv, ports: number[]): Promise<void> {
  requireDist()
  await env.server.createAgent({ ports })
  await env.server.attach(env.topo.server.dev)
}
