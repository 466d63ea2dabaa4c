// Per-packet cost (BPF_PROG_TEST_RUN) of bpf/syncookie.bpf.c against the
// anchor programs of bench/anchors.bpf.c, measured in a namespace of its own
// (scbench-<pid>-pp) by a worker pinned to one CPU.
import { existsSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { createNamespace, deleteNamespace, removeLeftovers, startWorker } from './ns.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
export const ANCHORS_OBJ = path.resolve(here, '../build/anchors.bpf.o')

export const PER_PACKET_KEYS = ['synNs', 'ackInvalidNs', 'otherPortNs', 'establishedNs', 'noopNs', 'kernelGenNs', 'kernelCheckNs']

/**
 * Runs the per-packet benchmark. `runs` single-shot runs of every case
 * (`block` in a row per case, the cases in turn), then `repeatRuns` runs with `repeat` repetitions each of the
 * cases that can repeat. Returns { v4, v6 } of { singleShot, repeated } with
 * { median, p25, p75, p99, n } per key, and the agent's counters.
 */
export async function runPerPacket({ runs = 20_000, block = 1, repeat = 10_000, repeatRuns = 21, cpu = 1, port = 8080, otherPort = 9090 } = {}) {
  if (!existsSync(ANCHORS_OBJ)) throw new Error(`${ANCHORS_OBJ} is missing: run npm run build`)
  removeLeftovers('scbench')
  const ns = createNamespace('scbench', 'pp')
  let worker
  try {
    worker = await startWorker(ns, { cpu })
    await worker.call('worker.load', path.join(here, 'ops-perpacket.mjs'))
    return await worker.call('bench.perPacket', { port, otherPort, runs, block, repeat, repeatRuns, anchorsPath: ANCHORS_OBJ }, 600_000)
  } finally {
    await worker?.kill()
    deleteNamespace(ns)
  }
}
