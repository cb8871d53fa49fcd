/**
 * A raftmq broker as a real child process, for the kill -9 tests: `raftmq start` run
 * through tsx from the source tree (`node --import tsx src/cli/main.ts start ...`),
 * restartable on the same data directory and the same port.
 *
 * The port is chosen once (bind a server to port 0, read the port, close it) and reused
 * by every restart, so a client keeps its bootstrap address across crashes. Readiness is
 * the broker's pino line "raftmq node started", whose `listen` must name that port. All
 * of the broker's output goes to `<logFile>` (appended across lives) and the last lines
 * are kept for failure messages; lines at level error or above are collected, since a
 * broker that logs an error during a crash test is worth a look even if nothing was lost.
 *
 * Imports node modules only.
 */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { createWriteStream } from 'node:fs'
import type { WriteStream } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'

export const root = join(import.meta.dirname, '..', '..')

const TAIL_LINES = 60

/**
 * Ports handed out below the kernel's ephemeral range (32768-60999 on Linux): a port the
 * kernel picked for port 0 is one it also gives the local end of outgoing connections, so
 * between picking it and listening on it another test's client could take it (EADDRINUSE).
 */
const PORT_LO = 20_000
const PORT_HI = 32_000

/** A TCP port nothing listens on right now, picked at random below the ephemeral range. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = PORT_LO + Math.floor(Math.random() * (PORT_HI - PORT_LO))
    const free = await new Promise<boolean>((resolve) => {
      const s = createServer()
      s.once('error', () => resolve(false))
      s.listen(port, host, () => s.close(() => resolve(true)))
    })
    if (free) return port
  }
  throw new Error(`no free port in ${PORT_LO}..${PORT_HI} after 50 tries`)
}

export interface BrokerProcessOptions {
  readonly dataDir: string
  readonly port: number
  /** Where the broker's stdout and stderr go (appended across restarts). */
  readonly logFile: string
  /** Extra `raftmq start` flags. */
  readonly args?: readonly string[]
  readonly startTimeoutMs?: number
}

export interface BrokerLogLine {
  readonly level: number
  readonly msg: string
  readonly [key: string]: unknown
}

export class BrokerProcess {
  readonly #opts: BrokerProcessOptions
  readonly #log: WriteStream
  #child: ChildProcess | null = null
  #exited: Promise<void> = Promise.resolve()
  #tail: string[] = []
  /** How many times the broker was started. */
  lives = 0
  /** Lines logged at level error (50) or above, over every life. */
  readonly errors: BrokerLogLine[] = []

  constructor(opts: BrokerProcessOptions) {
    this.#opts = opts
    this.#log = createWriteStream(opts.logFile, { flags: 'a' })
  }

  get address(): string {
    return `127.0.0.1:${this.#opts.port}`
  }

  get running(): boolean {
    return this.#child !== null && this.#child.exitCode === null && this.#child.signalCode === null
  }

  /** The broker's last output lines (stdout and stderr, all lives), for failure messages. */
  tail(n = TAIL_LINES): string {
    return this.#tail.slice(-n).join('\n')
  }

  /**
   * Starts the broker and resolves once it logs "raftmq node started" on our port, with
   * the time that took in ms. The promise may be dropped (it never rejects unhandled), so
   * a test can kill the broker in the middle of its start.
   */
  start(opts: { readonly env?: Readonly<Record<string, string>> } = {}): Promise<number> {
    const ready = this.#launch(opts.env ?? {})
    ready.catch(() => {})
    return ready
  }

  /** `env`: variables for this life only (a failpoint, say), over the test process's. */
  async #launch(env: Readonly<Record<string, string>>): Promise<number> {
    if (this.running) throw new Error('the broker is already running')
    const t0 = performance.now()
    this.lives++
    const life = this.lives
    this.#note(`---- life ${life}: starting`)
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(root, 'src', 'cli', 'main.ts'),
        'start',
        '--data-dir',
        this.#opts.dataDir,
        '--listen',
        this.address,
        '--log-level',
        'info',
        ...(this.#opts.args ?? []),
      ],
      { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '', ...env } },
    )
    this.#child = child
    this.#exited = new Promise((resolve) => child.once('close', () => resolve()))
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the broker (life ${life}) did not start within ${this.#opts.startTimeoutMs ?? 30_000} ms`)), this.#opts.startTimeoutMs ?? 30_000)
      const onLine = (line: string): void => {
        const parsed = parseLogLine(line)
        if (parsed === null) return
        if (parsed.level >= 50) this.errors.push(parsed)
        if (parsed.msg === 'raftmq node started') {
          clearTimeout(timer)
          if (parsed.listen !== this.address) reject(new Error(`the broker listens on ${String(parsed.listen)}, not ${this.address}`))
          else resolve()
        }
      }
      lines(child.stdout!, (l) => {
        this.#note(l)
        onLine(l)
      })
      lines(child.stderr!, (l) => this.#note(`stderr: ${l}`))
      child.once('exit', (code, signal) => {
        clearTimeout(timer)
        this.#note(`---- life ${life}: exited (code ${code}, signal ${signal})`)
        reject(new Error(`the broker (life ${life}) exited (code ${code}, signal ${signal}) before it was ready`))
      })
    })
    await ready
    return performance.now() - t0
  }

  /** kill -9, and waits until the process is gone. */
  async kill(): Promise<void> {
    if (!this.#child) return
    if (this.running) this.#child.kill('SIGKILL')
    await this.#exited
    this.#child = null
  }

  /** SIGTERM (a clean shutdown); resolves with the exit code, or kills after `timeoutMs`. */
  async stop(timeoutMs = 15_000): Promise<number | null> {
    const child = this.#child
    if (!child) return null
    if (this.running) child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    await this.#exited
    clearTimeout(timer)
    this.#child = null
    return child.exitCode
  }

  /** Sends `sig` and returns at once. */
  signal(sig: NodeJS.Signals): void {
    if (this.running) this.#child!.kill(sig)
  }

  /** Waits up to `ms` for the process to exit; its exit code, or undefined if it is still running. */
  async exited(ms: number): Promise<number | null | undefined> {
    const child = this.#child
    if (!child) return null
    let timer: NodeJS.Timeout | undefined
    const done = await Promise.race([this.#exited.then(() => true), new Promise<false>((r) => (timer = setTimeout(() => r(false), ms)))])
    clearTimeout(timer)
    if (!done) return undefined
    this.#child = null
    return child.exitCode
  }

  async close(): Promise<void> {
    await this.kill()
    await new Promise<void>((resolve) => this.#log.end(() => resolve()))
  }

  #note(line: string): void {
    this.#tail.push(line)
    if (this.#tail.length > TAIL_LINES * 4) this.#tail = this.#tail.slice(-TAIL_LINES)
    this.#log.write(line + '\n')
  }
}

function parseLogLine(line: string): BrokerLogLine | null {
  if (!line.startsWith('{')) return null
  try {
    const v = JSON.parse(line) as unknown
    if (typeof v !== 'object' || v === null) return null
    const o = v as Record<string, unknown>
    return typeof o.level === 'number' && typeof o.msg === 'string' ? (o as BrokerLogLine) : null
  } catch {
    return null
  }
}

function lines(stream: NodeJS.ReadableStream, fn: (line: string) => void): void {
  let buf = ''
  stream.setEncoding('utf8')
  stream.on('data', (chunk: string) => {
    buf += chunk
    let nl: number
    while ((nl = buf.indexOf('\n')) >= 0) {
      fn(buf.slice(0, nl))
      buf = buf.slice(nl + 1)
    }
  })
  stream.on('end', () => {
    if (buf.length > 0) fn(buf)
    buf = ''
  })
}
