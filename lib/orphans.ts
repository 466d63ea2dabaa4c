/**
 * What a killed agent leaves behind, and how the next one clears it.
 *
 * A tcx link lives in its process's fd table and goes with the process. A
 * clsact filter lives in the qdisc: after a kill -9 (or any exit that skips
 * the finalizers) the dead agent's filter stays, with its program and maps,
 * and keeps answering SYNs with a secret nobody rotates any more. It is found
 * by its program's name; it is an orphan when no process holds an fd of that
 * program (a live agent always does: it reads its maps through it).
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import type { NativeModule, NativeTcFilterInfo } from './native';

/** The program's name as the kernel keeps it (BPF_OBJ_NAME_LEN - 1 characters). */
export const PROGRAM_NAME = 'syncookie_ingress'.slice(0, 15);

/** The ids of the BPF programs that the processes of this host hold fds of, among `wanted`. */
export function heldProgramIds(wanted: ReadonlySet<number>): Set<number> {
  const held = new Set<number>();
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  } catch {
    return new Set(wanted); // cannot tell: treat every program as held
  }
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // the process exited meanwhile
      // EACCES (another user's process, hidepid, no CAP_SYS_PTRACE): it may hold one; cannot tell
      return new Set(wanted);
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`) !== 'anon_inode:bpf-prog') continue;
        const m = /^prog_id:\s*(\d+)$/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
        const id = m ? Number(m[1]) : 0;
        if (wanted.has(id)) held.add(id);
      } catch {
        // closed meanwhile
      }
    }
    if (held.size === wanted.size) break;
  }
  return held;
}

/** The id of the BPF program behind one of this process's fds. */
export function progIdOfFd(fd: number): number {
  const m = /^prog_id:\s*(\d+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

export interface OrphanSweep {
  /** The orphan filters removed from clsact ingress (their programs and maps go with them). */
  removed: NativeTcFilterInfo[];
  /** Filters left on the clsact qdisc (ingress and egress), ours included. */
  remaining: number;
}

/**
 * Removes from clsact ingress of `ifindex` every syncookie filter whose
 * program is not `ownProgId` and is held by no process. A live agent's
 * filter stays.
 */
export function removeOrphanFilters(native: NativeModule, ifindex: number, ownProgId: number): OrphanSweep {
  const ingress = native.tcFilters(ifindex, 'ingress');
  const candidates = ingress.filter((f) => f.kind === 'bpf' && f.progName === PROGRAM_NAME && f.progId !== 0 && f.progId !== ownProgId);
  if (candidates.length === 0) return { removed: [], remaining: ingress.length + native.tcFilters(ifindex, 'egress').length };
  const held = heldProgramIds(new Set(candidates.map((f) => f.progId)));
  const removed: NativeTcFilterInfo[] = [];
  for (const f of candidates) {
    if (held.has(f.progId)) continue;
    try {
      native.tcDetach(ifindex, f.priority, f.handle);
    } catch (err) {
      if ((err as { errno?: number }).errno !== 2) throw err; // ENOENT: removed meanwhile
    }
    removed.push(f);
  }
  const remaining = native.tcFilters(ifindex, 'ingress').length + native.tcFilters(ifindex, 'egress').length;
  return { removed, remaining };
}
