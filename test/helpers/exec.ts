/**
 * Running commands for kernel tests: always argv arrays (no shell), always a time bound.
 */
import { execFile } from 'node:child_process'

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
