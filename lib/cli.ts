#!/usr/bin/env node
/**
 * syncookie-agent CLI: protect ports on interfaces of this network namespace
 * until SIGINT/SIGTERM, rotate the secret, serve Prometheus metrics.
 */
import { closeSync, constants, fstatSync, openSync, readSync, watchFile, unwatchFile } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { parseArgs } from 'node:util';
import { SynCookieAgent } from './agent';
import { prometheusText } from './metrics';

const USAGE = `usage: syncookie-agent -i IFACE [-i IFACE...] -p PORT [-p PORT...] [options]

  -i, --interface IFACE   attach to TC ingress of IFACE (this network namespace)
  -p, --port PORT         protect TCP destination port PORT (IPv4 and IPv6)
      --key-file FILE     secret shared by a fleet: 32 hex digits; re-read when it changes
      --rotate SECONDS    without --key-file: a new random secret every SECONDS (default 3600)
      --metrics HOST:PORT serve Prometheus metrics at http://HOST:PORT/metrics
      --stats SECONDS     print the counters every SECONDS
      --destinations local|any
                          answer SYNs only for this host's addresses (local, the
                          default) or for any destination (TPROXY, a SYN proxy)
  -h, --help              this text`;

/** Parsed command line. */
export interface CliOptions {
  interfaces: string[];
  ports: number[];
  keyFile?: string;
  rotateSeconds: number;
  metrics?: { host: string; port: number };
  statsSeconds?: number;
  destinations: 'local' | 'any';
}

/** A string for an error message: quoted, and cut at 64 characters (with the full length). */
function quote(text: string): string {
  return text.length <= 64 ? JSON.stringify(text) : `${JSON.stringify(text.slice(0, 64))}... (${text.length} characters)`;
}

/** setInterval() takes at most 2^31 - 1 ms; a longer interval silently becomes 1 ms. */
const MAX_INTERVAL_SECONDS = Math.floor(0x7fffffff / 1000);

/** Seconds for a timer: a number in 0.001..MAX_INTERVAL_SECONDS. */
function seconds(name: string, text: string): number {
  const n = text.trim() === '' ? Number.NaN : Number(text);
  if (!Number.isFinite(n) || n < 0.001 || n > MAX_INTERVAL_SECONDS) {
    throw new RangeError(`--${name} must be a positive number of seconds (0.001..${MAX_INTERVAL_SECONDS}), got ${quote(text)}`);
  }
  return n;
}

/** A TCP port given as decimal digits: 1..65535. */
function portNumber(flag: string, text: string): number {
  const n = /^\d{1,5}$/.test(text) ? Number(text) : Number.NaN;
  if (!(n >= 1 && n <= 65535)) throw new RangeError(`${flag} must be a port number 1..65535, got ${quote(text)}`);
  return n;
}

/** Throws naming `flag` if `values` lists one value twice. */
function noRepeats(flag: string, values: readonly (string | number)[]): void {
  const seen = new Set<string | number>();
  for (const v of values) {
    if (seen.has(v)) throw new RangeError(`${flag} ${typeof v === 'string' ? quote(v) : v} is given twice`);
    seen.add(v);
  }
}

/** Parses argv (without node and the script); throws RangeError/TypeError naming the flag. */
export function parseCli(argv: readonly string[]): CliOptions | 'help' {
  if (!Array.isArray(argv)) throw new TypeError(`argv must be an array of strings, got ${typeof argv}`);
  for (let i = 0; i < argv.length; i++) {
    if (typeof argv[i] !== 'string') throw new TypeError(`argv[${i}] must be a string, got ${argv[i] === null ? 'null' : typeof argv[i]}`);
  }
  const { values } = parseArgs({
    args: [...argv],
    options: {
      interface: { type: 'string', short: 'i', multiple: true },
      port: { type: 'string', short: 'p', multiple: true },
      'key-file': { type: 'string' },
      rotate: { type: 'string' },
      metrics: { type: 'string' },
      stats: { type: 'string' },
      destinations: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return 'help';
  const interfaces = values.interface ?? [];
  if (interfaces.length === 0) throw new RangeError('at least one --interface is required');
  for (const name of interfaces) {
    // the agent's rule (IFNAMSIZ - 1 bytes, no '/', whitespace or NUL), said with the flag
    if (name.length === 0 || Buffer.byteLength(name) > 15 || /[/\s\0]/.test(name)) {
      throw new RangeError(`--interface must be an interface name (1-15 bytes, no '/' or spaces), got ${quote(name)}`);
    }
  }
  noRepeats('--interface', interfaces);
  const ports = (values.port ?? []).map((p) => portNumber('--port', p));
  if (ports.length === 0) throw new RangeError('at least one --port is required');
  noRepeats('--port', ports);
  const keyFile = values['key-file'];
  if (keyFile === '') throw new RangeError('--key-file must be a file path, got ""');
  if (keyFile !== undefined && values.rotate !== undefined) {
    throw new RangeError('--rotate and --key-file exclude each other: with a key file, whoever writes it rotates');
  }
  let metrics: CliOptions['metrics'];
  if (values.metrics !== undefined) {
    const m = /^(.*):([^:\]]*)$/.exec(values.metrics);
    if (!m) throw new RangeError(`--metrics must be HOST:PORT, got ${quote(values.metrics)}`);
    metrics = { host: m[1].replace(/^\[(.*)\]$/, '$1'), port: portNumber('--metrics port', m[2]) };
  }
  const destinations = values.destinations ?? 'local';
  if (destinations !== 'local' && destinations !== 'any') {
    throw new RangeError(`--destinations must be local or any, got ${quote(destinations)}`);
  }
  return {
    interfaces,
    ports,
    destinations,
    keyFile,
    rotateSeconds: values.rotate === undefined ? 3600 : seconds('rotate', values.rotate),
    metrics,
    statsSeconds: values.stats === undefined ? undefined : seconds('stats', values.stats),
  };
}

/** A key file is 32 hex digits and whitespace; anything longer is not one (and is not read whole). */
const KEY_FILE_MAX_BYTES = 4096;

/**
 * Reads a 16-byte key written as 32 hex digits (whitespace ignored) from a regular file.
 * Never echoes the content; errors name the path.
 */
export function readKeyFile(path: string): Uint8Array {
  // a number would be read as a file descriptor (readKeyFile(0) blocks on stdin)
  if (typeof path !== 'string') throw new TypeError(`path must be a file path string, got ${path === null ? 'null' : typeof path}`);
  if (path === '') throw new RangeError('path must be a file path, got ""');
  let fd: number;
  try {
    // O_NONBLOCK: opening a FIFO without a writer must not hang
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    throw fileError(path, err);
  }
  let text: string;
  try {
    const st = fstatSync(fd);
    if (st.isDirectory()) throw new RangeError(`${path} must be a key file, got a directory`);
    if (!st.isFile()) throw new RangeError(`${path} must be a regular key file, got a device, FIFO or socket`);
    const buf = Buffer.alloc(KEY_FILE_MAX_BYTES + 1);
    let n = 0;
    for (let r = -1; r !== 0 && n < buf.length; n += r) r = readSync(fd, buf, n, buf.length - n, null);
    if (n > KEY_FILE_MAX_BYTES) throw new RangeError(`${path} must hold a 16-byte key as 32 hex digits, got more than ${KEY_FILE_MAX_BYTES} bytes`);
    text = buf.toString('latin1', 0, n).replace(/\s+/g, '');
  } catch (err) {
    throw err instanceof RangeError ? err : fileError(path, err);
  } finally {
    closeSync(fd);
  }
  if (!/^[0-9a-fA-F]{32}$/.test(text)) throw new RangeError(`${path} must hold a 16-byte key as 32 hex digits`);
  return Uint8Array.from(Buffer.from(text, 'hex'));
}

/** An fs error on the key file, naming the path (Node's EISDIR/EACCES text does not). */
function fileError(path: string, err: unknown): Error {
  const e = err as NodeJS.ErrnoException;
  const what = e.code === 'ENOENT' ? 'no such file' : e.code === 'EACCES' ? 'permission denied' : e.message;
  return Object.assign(new Error(`cannot read the key file ${path}: ${what}`, { cause: err }), { code: e.code });
}

async function main(argv: string[]): Promise<void> {
  let opts: CliOptions | 'help';
  try {
    opts = parseCli(argv);
  } catch (err) {
    process.stderr.write(`syncookie-agent: ${(err as Error).message}\n${USAGE}\n`);
    process.exit(2);
  }
  if (opts === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const agent = new SynCookieAgent({ ports: opts.ports, destinations: opts.destinations });
  const keyFile = opts.keyFile;
  const timers: NodeJS.Timeout[] = [];
  let server: Server | undefined;
  let lastKey = '';
  const log = (msg: string): void => void process.stdout.write(`${new Date().toISOString()} ${msg}\n`);
  agent.on('interfaceGone', (e) =>
    log(`${e.interface} ${e.reason === 'moved' ? 'moved to another network namespace' : 'was deleted'}: not protected there any more (restart to attach again)`),
  );
  agent.on('interfaceRenamed', (e) => log(`${e.interface} renamed ${e.from} -> ${e.to}: still attached`));

  const stop = async (signal: string): Promise<void> => {
    log(`${signal}: detaching`);
    timers.forEach(clearInterval);
    if (keyFile) unwatchFile(keyFile);
    server?.close();
    await agent.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));

  try {
    if (keyFile) {
      const key = readKeyFile(keyFile);
      lastKey = Buffer.from(key).toString('hex');
      await agent.rotateSecret(key);
      watchFile(keyFile, { interval: 1000 }, () => {
        try {
          const next = readKeyFile(keyFile);
          const hex = Buffer.from(next).toString('hex');
          if (hex === lastKey) return;
          lastKey = hex;
          agent.rotateSecret(next).then(() => log(`secret rotated from ${keyFile}`), (e: Error) => log(`rotation failed: ${e.message}`));
        } catch (e) {
          log(`ignoring ${keyFile}: ${(e as Error).message}`);
        }
      });
    } else {
      timers.push(setInterval(() => void agent.rotateSecret().catch((e: Error) => log(`rotation failed: ${e.message}`)), opts.rotateSeconds * 1000));
    }
    for (const ifname of opts.interfaces) await agent.attach(ifname);
    log(`protecting port(s) ${agent.ports.join(', ')} on ${[...agent.attachments].map(([n, m]) => `${n} (${m})`).join(', ')}`);
    if (opts.metrics) {
      const { host, port } = opts.metrics;
      server = createServer((req, res) => {
        if (req.url !== '/metrics') {
          res.writeHead(404).end();
          return;
        }
        agent.stats().then(
          (s) => res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(prometheusText(s)),
          (e: Error) => res.writeHead(500).end(`${e.message}\n`),
        );
      });
      await new Promise<void>((resolve, reject) => server?.once('error', reject).listen(port, host, resolve));
      log(`metrics at http://${host.includes(':') ? `[${host}]` : host}:${port}/metrics`);
    }
    if (opts.statsSeconds) {
      timers.push(
        setInterval(() => {
          void agent.stats().then((s) => log(Object.entries(s).filter(([, v]) => v > 0n).map(([k, v]) => `${k}=${v}`).join(' ')));
        }, opts.statsSeconds * 1000),
      );
    }
  } catch (err) {
    process.stderr.write(`syncookie-agent: ${(err as Error).message}\n`);
    await agent.close();
    process.exit(1);
  }
}

if (require.main === module) void main(process.argv.slice(2));
