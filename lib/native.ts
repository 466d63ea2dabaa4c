/**
 * The native addon (binding/*.cc), loaded and typed. It mirrors libbpf and
 * adds nothing: no defaults, no retries, no fallbacks. What a call or an
 * error means is decided by the rest of lib/.
 */
import * as path from 'node:path';

/** A map of bpf/syncookie.bpf.c. */
export type MapName = 'config' | 'secrets' | 'ports' | 'stats' | 'routes' | 'hosts';

/** sizeof/offsetof of the structs in bpf/syncookie.h, as the addon was compiled. */
export interface NativeLayout {
  readonly sizes: {
    readonly sc_secret: number;
    readonly sc_config: number;
    readonly sc_ports: number;
    readonly sc_stats: number;
    readonly sc_route_key: number;
    readonly sc_route: number;
  };
  readonly offsets: {
    readonly config_generation: number;
    readonly config_flags: number;
    readonly config_rmem_max: number;
    readonly config_now_ms_override: number;
    readonly secret_k0: number;
    readonly secret_k1: number;
  };
  /** The TypeScript names of the SC_STATS counters, in enum sc_stat order. */
  readonly statNames: readonly string[];
  readonly constants: {
    readonly SC_SECRET_SLOTS: number;
    readonly SC_PORT_WORDS: number;
    readonly SC_STAT_COUNT: number;
    readonly SC_CFG_HAVE_PREV: number;
    readonly SC_CFG_LOCAL_ONLY: number;
    readonly SC_CFG_LOCAL_NETS: number;
    readonly SC_ROUTE_ENTRIES: number;
    readonly SC_RTN_LOCAL: number;
  };
}

/**
 * A failed C call. message is `<op>: <strerror> (errno N)`. Bad argument
 * types are plain TypeErrors instead; calls on a closed Program throw an
 * Error with code 'ERR_CLOSED'.
 */
export interface NativeErrnoError extends Error {
  /** Positive errno. */
  readonly errno: number;
  /** The errno's name: 'EPERM', 'EINVAL', ... ('ENOTSUPP' for 524). */
  readonly code: string;
  /** The C call that failed: 'bpf_object__load', 'bpf_link_create', ... */
  readonly op: string;
  /** libbpf's output during the call: always set for open(), else only when libbpf printed something. */
  readonly log?: string;
}

/** Result of one BPF_PROG_TEST_RUN. */
export interface TestRunResult {
  /** The program's return code (TC_ACT_*). */
  readonly retval: number;
  /** The packet after the run, at most dataSizeOut bytes. */
  readonly data: Buffer;
  /** Mean run time per repetition, as the kernel measured it. */
  readonly durationNs: number;
}

/** The loaded BPF object: program syncookie_ingress and its maps. */
export interface NativeProgram {
  progFd(): number;
  mapFd(name: MapName): number;
  /** bpf_map_update_elem; flags BPF_ANY (0), BPF_NOEXIST (1), BPF_EXIST (2). */
  mapUpdate(name: MapName, key: Uint8Array, value: Uint8Array, flags?: number): void;
  /** The value bytes; for the per-CPU stats map possibleCpus() × round_up(size, 8). */
  mapLookup(name: MapName, key: Uint8Array): Buffer;
  /** bpf_map_delete_elem; throws ENOENT for a key that is not there. */
  mapDelete(name: MapName, key: Uint8Array): void;
  /** BPF_PROG_TEST_RUN off the main thread; dataSizeOut 0 returns no packet. */
  testRun(data: Uint8Array, repeat: number, dataSizeOut: number): Promise<TestRunResult>;
  /** bpf_link_create(prog, ifindex, BPF_TCX_INGRESS), in the caller's netns. */
  attachTcx(ifindex: number): Promise<NativeLink>;
  /** Creates the clsact qdisc unless it exists, then bpf_tc_attach at ingress. */
  attachTc(ifindex: number, priority: number, handle: number): Promise<NativeTcFilter>;
  /**
   * Destroys the skeleton; idempotent. Links and filters stay attached; every
   * other method then throws an Error with code 'ERR_CLOSED'.
   */
  close(): void;
}

/**
 * Any BPF object file, opened and loaded by libbpf (bench/ uses it for the
 * anchor programs of bench/anchors.bpf.c). Programs are named as in C.
 */
export interface NativeBpfObject {
  /** The names of the object's programs, in ELF order. */
  progNames(): string[];
  /** The program's fd; throws (op 'bpf_object__find_program_by_name', ENOENT) for an unknown name. */
  progFd(progName: string): number;
  /** BPF_PROG_TEST_RUN of one program off the main thread, as {@link NativeProgram.testRun}. */
  testRun(progName: string, data: Uint8Array, repeat: number, dataSizeOut: number): Promise<TestRunResult>;
  /** bpf_object__close; idempotent. Every other method then throws an Error with code 'ERR_CLOSED'. */
  close(): void;
}

/** A tcx link: attached until detach(), GC or the end of the process. */
export interface NativeLink {
  /** The link fd, -1 once detached. */
  readonly fd: number;
  /** Closes the link fd; idempotent. */
  detach(): void;
}

/**
 * A clsact ingress filter. Removed by detach(), or as a safety net by GC of this
 * object or a normal exit; a crash or kill -9 leaves it in the kernel.
 */
export interface NativeTcFilter {
  readonly ifindex: number;
  /** As the kernel assigned it when 0 was asked. */
  readonly priority: number;
  readonly handle: number;
  /** The clsact qdisc was created by attachTc, so detach() deletes it. */
  readonly hookCreated: boolean;
  /** After detach(): the qdisc attachTc created was left because other filters are on it. */
  readonly qdiscKept: boolean;
  /** detach() will delete the qdisc as if attachTc had created it (when no other filter is on it). */
  adoptQdisc(): void;
  /**
   * bpf_tc_detach, then, if the qdisc is ours and no other filter (ingress or
   * egress) is on it, deletes it. A filter or qdisc already gone (ENODEV,
   * ENOENT) counts as removed. Throws the first failure; a retry redoes only
   * what is left.
   */
  detach(): void;
}

/** One filter at a clsact hook, from a netlink dump (RTM_GETTFILTER). */
export interface NativeTcFilterInfo {
  readonly priority: number;
  readonly handle: number;
  /** ETH_P_* in network byte order. */
  readonly protocol: number;
  /** The classifier: 'bpf', 'u32', 'flower', ... */
  readonly kind: string;
  /** cls_bpf: the program's id; else 0. */
  readonly progId: number;
  /** The program's name (at most 15 characters), '' when unknown. */
  readonly progName: string;
}

/** One route of an rtnetlink dump or event (rtmsg and its attributes). */
export interface NativeRoute {
  /** RTM_NEWROUTE (always, in a dump) or RTM_DELROUTE. */
  readonly add: boolean;
  readonly family: 4 | 6;
  /** RTA_DST: 4 or 16 bytes, zero for a default route. */
  readonly dst: Buffer;
  readonly dstLen: number;
  readonly srcLen: number;
  readonly tos: number;
  /** rtm_type: RTN_LOCAL (2), RTN_BROADCAST (3), ... */
  readonly type: number;
  /** RTA_TABLE: 255 local, 254 main, ... */
  readonly table: number;
  /** RTA_OIF, 0 if none. */
  readonly ifindex: number;
  /** RTA_PRIORITY (the metric), 0 if none. */
  readonly priority: number;
}

/** A subscription to route (RTMGRP_IPV4_ROUTE, RTMGRP_IPV6_ROUTE) or link (RTMGRP_LINK) changes; its thread does not keep the process alive. */
export interface NativeRouteEvents {
  /** Stops the subscription and its thread; idempotent. */
  close(): void;
}

/** One link change (RTMGRP_LINK). */
export interface NativeLinkEvent {
  /** RTM_NEWLINK (new or changed: renamed, up, down); false: RTM_DELLINK (deleted, or moved to another netns). */
  readonly add: boolean;
  readonly ifindex: number;
  /** IFLA_IFNAME, '' if the message had none. */
  readonly name: string;
  /** RTM_DELLINK with IFLA_NEW_NETNSID: the device moved to another namespace. */
  readonly moved: boolean;
}

/** A class the addon exports for instanceof; it cannot be constructed from JS. */
type NativeClass<T> = abstract new (...args: never[]) => T;

/** The module binding/addon.cc exports. */
export interface NativeModule {
  layout(): NativeLayout;
  /** libbpf_num_possible_cpus(). */
  possibleCpus(): number;
  /** clock_gettime(CLOCK_TAI) in nanoseconds. */
  clockTaiNs(): bigint;
  /** if_nametoindex, in the caller's netns; throws (op 'if_nametoindex') if there is no such interface. */
  ifNameToIndex(name: string): number;
  /** if_indextoname, in the caller's netns; throws ENODEV if there is no such interface. */
  ifIndexToName(ifindex: number): string;
  /** How many programs are attached at BPF_TCX_INGRESS of ifindex (BPF_PROG_QUERY). */
  queryTcx(ifindex: number): number;
  /** The filters at clsact `side` of ifindex ([] without a clsact qdisc); throws ENODEV for no such device. */
  tcFilters(ifindex: number, side: 'ingress' | 'egress'): NativeTcFilterInfo[];
  /** bpf_tc_detach of the clsact ingress filter at priority/handle. */
  tcDetach(ifindex: number, priority: number, handle: number): void;
  /** Deletes the clsact qdisc of ifindex, with every filter on it. */
  tcQdiscDelete(ifindex: number): void;
  /** The routes of every table whose rtm_type is in `types` (IPv4, then IPv6), in the caller's netns, off the main thread. */
  routeDump(types: readonly number[]): Promise<NativeRoute[]>;
  /**
   * Calls onEvents(routes, 0) with every route change of those types from
   * now on, in the kernel's order; onEvents([], 105) (ENOBUFS) when
   * events were lost. onEvents must not throw.
   */
  routeEvents(types: readonly number[], onEvents: (routes: NativeRoute[], errno: number) => void): NativeRouteEvents;
  /** The same for links of the caller's netns: onEvents(links, 0), onEvents([], 105) when events were lost. */
  linkEvents(onEvents: (links: NativeLinkEvent[], errno: number) => void): NativeRouteEvents;
  /** syncookie_bpf__open + __load off the main thread; rejects with log set. */
  open(): Promise<NativeProgram>;
  /** bpf_object__open_file + __load of the file at `path`, off the main thread; rejects with log set. */
  openObject(path: string): Promise<NativeBpfObject>;
  readonly Program: NativeClass<NativeProgram>;
  readonly Link: NativeClass<NativeLink>;
  readonly TcFilter: NativeClass<NativeTcFilter>;
  readonly BpfObject: NativeClass<NativeBpfObject>;
  readonly RouteEvents: NativeClass<NativeRouteEvents>;
}

// node-gyp-build ships no types.
const nodeGypBuild = require('node-gyp-build') as (dir: string) => unknown;
let loaded: NativeModule | undefined;

/**
 * Loads build/Release/syncookie.node (or a prebuild) on first use, so that
 * importing the package loads nothing. The package root is one level up from
 * both lib/ (tests run the source) and dist/ (the compiled file).
 */
export function loadNative(): NativeModule {
  loaded ??= nodeGypBuild(path.resolve(__dirname, '..')) as NativeModule;
  return loaded;
}
