import { STAT_NAMES, type StatName } from './layout';

/** One line of help per counter, for the Prometheus exposition (README has the same table). */
const HELP: Record<StatName, string> = {
  synReceived: 'SYNs to a protected port',
  synAckSent: 'SYNs answered with a cookie SYN-ACK',
  synExistingSocket: 'SYNs whose 4-tuple already had a socket, handed to the kernel',
  synNoListener: 'SYNs to a port nobody listens on, handed to the kernel',
  synCookiesOff: 'SYNs handed to the kernel because net.ipv4.tcp_syncookies is 0',
  synDropMalformed: 'SYNs dropped: truncated or malformed header or options, SYN+FIN/RST',
  synDropFragment: 'SYNs dropped: carried in an IP fragment',
  synDropHeaders: 'packets dropped: IPv6 extension headers the program does not answer',
  synDropAddress: 'SYNs dropped: broadcast, multicast or unspecified address',
  synDropMss: 'SYNs dropped: client MSS below the smallest table entry',
  synDropError: 'SYNs dropped: building or sending the SYN-ACK failed',
  ackAccepted: 'ACKs with a valid cookie, turned into connections',
  ackRejected: 'ACKs with an invalid cookie, dropped',
  ackKernelCookie: 'ACKs carrying a kernel syncookie, handed to the kernel',
  ackAssignFailed: 'valid cookie ACKs the kernel refused (bpf_sk_assign_tcp_reqsk), dropped',
  ackMalformed: 'ACKs with malformed options, dropped',
  passEstablished: 'segments of existing connections',
  passNoSocket: 'segments for no socket at all, handed to the kernel',
  passOther: 'other segments to protected ports (RST, SYN-ACK, fragments), handed to the kernel',
};

/** `synAckSent` → `syn_ack_sent`. */
export function snakeCase(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** A string for an error message: quoted, and cut at 64 characters (with the full length). */
function quote(text: string): string {
  return text.length <= 64 ? JSON.stringify(text) : `${JSON.stringify(text.slice(0, 64))}... (${text.length} characters)`;
}

/** Renders a bad value for an error message. */
function show(value: unknown): string {
  if (typeof value === 'string') return quote(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'object' && value !== null) return Array.isArray(value) ? `array(${value.length})` : (value.constructor?.name ?? 'object');
  return String(value);
}

/** The counter `stats[name]`; throws TypeError/RangeError naming `stats.<name>`. */
function counter(stats: Record<string, unknown>, name: StatName): bigint {
  const v = stats[name];
  if (typeof v !== 'bigint') throw new TypeError(`stats.${name} must be a non-negative bigint, got ${show(v)}`);
  if (v < 0n) throw new RangeError(`stats.${name} must be a non-negative bigint, got ${show(v)}`);
  return v;
}

/** `{k="v",...}` for the constant labels; throws TypeError/RangeError naming `labels` or the label. */
function labelSuffix(labels: unknown): string {
  if (typeof labels !== 'object' || labels === null || Array.isArray(labels)) {
    throw new TypeError(`labels must be an object of label names to string values, got ${show(labels)}`);
  }
  const parts = Object.entries(labels).map(([k, v]: [string, unknown]) => {
    // Prometheus reserves names that start with "__"
    if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(k) || k.startsWith('__')) {
      throw new RangeError(`labels: ${quote(k)} is not a valid metric label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with "__")`);
    }
    if (typeof v !== 'string') throw new TypeError(`labels.${k} must be a string, got ${show(v)}`);
    return `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
  });
  return parts.length > 0 ? `{${parts.join(',')}}` : '';
}

/**
 * The counters in the Prometheus text exposition format, one counter family
 * per stat: `syncookie_agent_<name>_total`, with optional constant labels.
 * Throws TypeError/RangeError naming the field for a missing or bad counter or label.
 */
export function prometheusText(stats: Record<StatName, bigint>, labels: Record<string, string> = {}): string {
  if (typeof stats !== 'object' || stats === null) {
    throw new TypeError(`stats must be an object of bigint counters (agent.stats()), got ${show(stats)}`);
  }
  const values = STAT_NAMES.map((name) => counter(stats as Record<string, unknown>, name));
  const suffix = labelSuffix(labels);
  const lines: string[] = [];
  STAT_NAMES.forEach((name, i) => {
    const metric = `syncookie_agent_${snakeCase(name)}_total`;
    lines.push(`# HELP ${metric} ${HELP[name]}`, `# TYPE ${metric} counter`, `${metric}${suffix} ${String(values[i])}`);
  });
  return `${lines.join('\n')}\n`;
}
