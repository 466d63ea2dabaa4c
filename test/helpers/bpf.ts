/**
 * What BPF is attached where, asked of the kernel (test/helpers/bpfquery.py): tcx through
 * BPF_PROG_QUERY (bpftool 7.1 cannot see it), legacy tc and XDP through bpftool.
 */
import type { ChildProcess } from 'node:child_process'
import path from 'node:path'
import { run, spawnFirstLine } from './exec.js'

const BPFQUERY = path.resolve(__dirname, 'bpfquery.py')

/** A program attached to tcx ingress. */
export interface AttachedProg {
  id: number
  name: string
  /** BPF_PROG_TYPE_* (3 = SCHED_CLS). */
  type: number
}

/** Programs on tcx ingress of `dev` inside namespace `ns`. */
export async function tcxIngress(ns: string, dev: string): Promise<AttachedProg[]> {
  const { stdout } = await run(['nsenter', `--net=/run/netns/${ns}`, 'python3', BPFQUERY, 'tcx-ingress', dev])
  return (JSON.parse(stdout) as { progs: AttachedProg[] }).progs
}

/** Whether these program ids still exist in the kernel. */
export async function progsExist(ids: readonly number[]): Promise<Record<string, boolean>> {
  if (ids.length === 0) return {}
  const { stdout } = await run(['python3', BPFQUERY, 'prog-exists', ...ids.map(String)])
  return JSON.parse(stdout) as Record<string, boolean>
}

/**
 * `bpftool net show dev DEV` inside `ns`, as JSON: the tc (clsact) and XDP programs. Returns the
 * number of tc and xdp entries found for DEV.
 */
export async function bpftoolNetShow(ns: string, dev: string): Promise<{ tc: unknown[]; xdp: unknown[]; raw: string }> {
  const { stdout } = await run(['nsenter', `--net=/run/netns/${ns}`, 'bpftool', '-j', 'net', 'show', 'dev', dev])
  const parsed = JSON.parse(stdout) as { tc?: unknown[]; xdp?: unknown[] }[]
  const tc: unknown[] = []
  const xdp: unknown[] = []
  for (const entry of parsed) {
    tc.push(...(entry.tc ?? []))
    xdp.push(...(entry.xdp ?? []))
  }
  return { tc, xdp, raw: stdout }
}

/** `tc filter show dev DEV ingress` inside `ns` (legacy clsact filters; empty when none). */
export async function tcIngressFilters(ns: string, dev: string): Promise<string> {
  const { stdout } = await run(['ip', 'netns', 'exec', ns, 'tc', 'filter', 'show', 'dev', dev, 'ingress'])
  return stdout.trim()
}

/** A dummy tcx program held by a child process (harness self-test only). */
export interface DummyHold {
  progId: number
  child: ChildProcess
}

/** Attaches a do-nothing program to tcx ingress of `dev` in `ns`, held by a child process. */
export async function holdDummyTcx(ns: string, dev: string): Promise<DummyHold> {
  const { line, child } = await spawnFirstLine(['nsenter', `--net=/run/netns/${ns}`, 'python3', BPFQUERY, 'hold-dummy', dev], 'hold-dummy')
  const { prog_id: progId } = JSON.parse(line) as { prog_id: number }
  return { progId, child }
}

/** `bpftool prog show`: the id, type and name of every loaded program. */
export async function bpftoolProgs(): Promise<{ id: number; type: string; name?: string }[]> {
  const { stdout } = await run(['bpftool', '-j', 'prog', 'show'])
  return JSON.parse(stdout) as { id: number; type: string; name?: string }[]
}
