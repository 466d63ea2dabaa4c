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

/**
 * The counters in the Prometheus text exposition format, one counter family
 * per stat: `syncookie_agent_<name>_total`, with optional constant labels.
 */
export function prometheusText(stats: Record<StatName, bigint>, labels: Record<string, string> = {}): string {
  const labelText = Object.entries(labels)
    .map(([k, v]) => {
      if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(k)) throw new RangeError(`metric label name ${JSON.stringify(k)} is not valid`);
      return `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
    })
    .join(',');
  const suffix = labelText ? `{${labelText}}` : '';
  const lines: string[] = [];
  for (const name of STAT_NAMES) {
    const metric = `syncookie_agent_${snakeCase(name)}_total`;
    lines.push(`# HELP ${metric} ${HELP[name]}`, `# TYPE ${metric} counter`, `${metric}${suffix} ${stats[name].toString()}`);
  }
  return `${lines.join('\n')}\n`;
}
