#!/usr/bin/env node
/**
 * syncookie-agent CLI: protect ports on interfaces of this network namespace
 * until SIGINT/SIGTERM, rotate the secret, serve Prometheus metrics.
 */
import { readFileSync, watchFile, unwatchFile } from 'node:fs';
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
  -h, --help              this text`;

/** Parsed command line. */
export interface CliOptions {
  interfaces: string[];
  ports: number[];
  keyFile?: string;
  rotateSeconds: number;
  metrics?: { host: string; port: number };
  statsSeconds?: number;
}

function positiveNumber(name: string, text: string): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) throw new RangeError(`--${name} must be a positive number, got ${JSON.stringify(text)}`);
  return n;
}

/** Parses argv (without node and the script); throws RangeError/TypeError naming the flag. */
export function parseCli(argv: string[]): CliOptions | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      interface: { type: 'string', short: 'i', multiple: true },
      port: { type: 'string', short: 'p', multiple: true },
      'key-file': { type: 'string' },
      rotate: { type: 'string' },
      metrics: { type: 'string' },
      stats: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return 'help';
  const interfaces = values.interface ?? [];
  if (interfaces.length === 0) throw new RangeError('at least one --interface is required');
  const ports = (values.port ?? []).map((p) => {
    if (!/^\d+$/.test(p)) throw new RangeError(`--port must be a port number, got ${JSON.stringify(p)}`);
    return Number(p);
  });
  if (ports.length === 0) throw new RangeError('at least one --port is required');
  if (values['key-file'] !== undefined && values.rotate !== undefined) {
    throw new RangeError('--rotate and --key-file exclude each other: with a key file, whoever writes it rotates');
  }
  let metrics: CliOptions['metrics'];
  if (values.metrics !== undefined) {
    const m = /^(.*):(\d+)$/.exec(values.metrics);
    if (!m || Number(m[2]) > 65535) throw new RangeError(`--metrics must be HOST:PORT, got ${JSON.stringify(values.metrics)}`);
    metrics = { host: m[1].replace(/^\[(.*)\]$/, '$1'), port: Number(m[2]) };
  }
  return {
    interfaces,
    ports,
    keyFile: values['key-file'],
    rotateSeconds: values.rotate === undefined ? 3600 : positiveNumber('rotate', values.rotate),
    metrics,
    statsSeconds: values.stats === undefined ? undefined : positiveNumber('stats', values.stats),
  };
}

/** Reads a 16-byte key written as 32 hex digits (whitespace ignored). Never echoes the content. */
export function readKeyFile(path: string): Uint8Array {
  const text = readFileSync(path, 'utf8').replace(/\s+/g, '');
  if (!/^[0-9a-fA-F]{32}$/.test(text)) throw new RangeError(`${path} must hold a 16-byte key as 32 hex digits`);
  return Uint8Array.from(Buffer.from(text, 'hex'));
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
  const agent = new SynCookieAgent({ ports: opts.ports });
  const keyFile = opts.keyFile;
  const timers: NodeJS.Timeout[] = [];
  let server: Server | undefined;
  let lastKey = '';
  const log = (msg: string): void => void process.stdout.write(`${new Date().toISOString()} ${msg}\n`);

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
