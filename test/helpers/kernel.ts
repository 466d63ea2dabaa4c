/**
 * Glue for kernel test files: skipping, one topology plus workers per file, cleanup in afterAll
 * even when a test failed, and arithmetic on agent counters.
 */
import { existsSync } from 'node:fs'
import { afterAll, describe } from 'vitest'
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

/** Every name in bpf/syncookie.h SC_STATS, in order (the TS field names). */
export const STAT_NAMES = [
  'synReceived',
  'synAckSent',
  'synExistingSocket',
  'synNoListener',
  'synDropMalformed',
  'synDropFragment',
  'synDropHeaders',
  'synDropAddress',
  'synDropMss',
  'synDropError',
  'ackAccepted',
  'ackRejected',
  'ackKernelCookie',
  'ackAssignFailed',
  'ackMalformed',
  'passEstablished',
  'passNoSocket',
  'passOther',
] as const

export type StatName = (typeof STAT_NAMES)[number]

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
