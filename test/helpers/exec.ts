/**
 * Running commands for kernel tests: always argv arrays (no shell), always a time bound.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'

/** Output of a finished command. */
export interface RunResult {
  stdout: string
  stderr: string
}

/** A command failed or timed out; carries its argv and output for the test report. */
export class CommandError extends Error {
  constructor(
    readonly argv: readonly string[],
    readonly exitCode: number | string | null,
    readonly stdout: string,
    readonly stderr: string,
  ) {
    super(`command failed (${String(exitCode)}): ${argv.join(' ')}\n${stderr.trim()}`)
    this.name = 'CommandError'
  }
}

/** Options for {@link run}. */
export interface RunOptions {
  /** Kill the command after this long (default 20 s). */
  timeoutMs?: number
  /** Extra environment variables. */
  env?: Record<string, string>
}

/** Runs argv[0] with the rest as arguments; rejects with {@link CommandError} on a non-zero exit. */
export function run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const [file, ...args] = argv
  if (file === undefined) throw new TypeError('run: empty argv')
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      {
        timeout: opts.timeoutMs ?? 20_000,
        killSignal: 'SIGKILL',
        maxBuffer: 64 * 1024 * 1024,
        env: opts.env ? { ...process.env, ...opts.env } : process.env,
      },
      (err, stdout, stderr) => {
        if (err) {
          const code = (err as NodeJS.ErrnoException & { code?: number | string }).code ?? null
          const killed = (err as { killed?: boolean }).killed === true
          reject(new CommandError(argv, killed ? 'timeout' : code, stdout, stderr))
        } else {
          resolve({ stdout, stderr })
        }
      },
    )
  })
}

/** Sleeps for ms milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/**
 * Polls check() until it returns a non-undefined value, at most `timeoutMs` and `maxTries` times.
 * Returns the last value (or undefined if it never settled) so callers assert on what they saw.
 */
export async function poll<T>(
  check: () => Promise<T | undefined>,
  { timeoutMs = 5_000, intervalMs = 50, maxTries = 1_000 } = {},
): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs
  for (let i = 0; i < maxTries; i++) {
    const value = await check()
    if (value !== undefined) return value
    if (Date.now() >= deadline) break
    await sleep(intervalMs)
  }
  return undefined
}

/**
 * Starts `argv` and resolves with the first line it prints (a helper that sets something up,
 * reports it as one JSON line, and keeps holding it until killed); rejects after 5 s or if it
 * exits first.
 */
export async function spawnFirstLine(argv: readonly string[], what: string): Promise<{ line: string; child: ChildProcess }> {
  const child = spawn(argv[0] ?? '', argv.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] })
  const line = await new Promise<string>((resolve, reject) => {
    let buf = ''
    const timer = setTimeout(() => reject(new Error(`${what}: no answer in 5 s`)), 5_000)
    child.stdout?.on('data', (d: Buffer) => {
      buf += d.toString()
      if (buf.includes('\n')) {
        clearTimeout(timer)
        resolve(buf.split('\n')[0] ?? '')
      }
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`${what} exited with ${String(code)}`))
    })
  })
  return { line, child }
}
