/**
 * Failpoints: named places in the WAL's file-system calls where a test can make a real
 * `raftmq start` process meet the error a broken disk gives (etcd's gofail, FreeBSD's
 * fail(9)). Inert unless the environment variable RAFTMQ_FAILPOINTS names one; a node
 * that has one armed says so in a warning when it starts (src/broker/node.ts), and one
 * that is given a spec it cannot read refuses to start rather than run without the fault
 * the test asked for. Nothing in raftmq sets the variable.
 *
 *   RAFTMQ_FAILPOINTS='wal.datasync:error=EIO,after=5,path=/w0/'
 *
 * A spec is one or more `point:option,option...` separated by `;`. Options:
 *   error=<ERRNO>  the errno code the call fails with (EIO, ENOSPC, ...)
 *   hang=<ms>      the call first blocks its thread that long (a disk that stops
 *                  answering); then it fails with error=, or goes on if none is given.
 *                  At least one of error= and hang= is required
 *   after=<n>      that many matching calls succeed first (default 0); every later one
 *                  fails: a disk that failed stays failed
 *   path=<text>    only calls on files whose path contains <text> (default: every file)
 * Points: `wal.datasync`, the fdatasync of NodeWalFs (node-fs.ts) that makes a WAL commit
 * durable. A failing call is not made: the error comes back as a value with its code, as
 * fdatasyncSync's would (the data stays in the page cache, as after a real failed sync
 * in a process that then stops). Counts are per thread (each worker thread, and the main
 * thread, loads this module anew and drives its own WAL), so `path=/w0/` with `after=5`
 * is worker 0's sixth fdatasync.
 *
 * Why a failpoint, to see what a real process does after an I/O error, rather than:
 * - a device-mapper `error`/`flakey` target or a FUSE file system returning EIO: need
 *   the kernel module, a spare block device or a FUSE library (none here, and not in CI),
 *   root, and a mistake in the device name fails a device other users' data lives on;
 * - `strace --inject=fdatasync:error=EIO:when=N` (or an LD_PRELOAD shim): ptrace rights,
 *   every syscall of the process slowed, and it hits every fdatasync of every thread,
 *   LevelDB's included, so "the Nth sync of worker 0's WAL" cannot be named;
 * - a full tmpfs: gives ENOSPC, never EIO (test/process/disk-full.test.ts covers that).
 * A failpoint needs no privilege, touches no device and no other process, fails exactly
 * the call named, the same way on every run, and goes through the same failure value a
 * real EIO from fdatasyncSync produces. What it cannot show is the kernel's side (pages
 * dropped after a failed writeback); the WAL already treats any failed fdatasync as final
 * for that reason (wal.ts).
 *
 * Imports src/base only.
 */
import { fail, ok } from '../../base/index.js'
import type { Result } from '../../base/index.js'

export const FAILPOINTS_ENV = 'RAFTMQ_FAILPOINTS'

export const failpointNames = ['wal.datasync'] as const
export type FailpointName = (typeof failpointNames)[number]

export interface Failpoint {
  readonly name: FailpointName
  /** The errno code the call fails with (null: it goes on, after hanging). */
  readonly error: string | null
  /** How long the call blocks its thread first (0: not at all). */
  readonly hangMs: number
  /** Matching calls that succeed before the first failure. */
  readonly after: number
  /** Only files whose path contains this (null: every file). */
  readonly path: string | null
}

/** Reads a RAFTMQ_FAILPOINTS spec (see the header); an empty one arms nothing. */
export function parseFailpoints(spec: string): Result<Failpoint[], 'INVALID_FAILPOINTS'> {
  const bad = (why: string) => fail('INVALID_FAILPOINTS' as const, `${FAILPOINTS_ENV}=${JSON.stringify(spec)}: ${why}`)
  const points: Failpoint[] = []
  for (const term of spec.split(';').map((t) => t.trim())) {
    if (term === '') continue
    const colon = term.indexOf(':')
    const name = (colon < 0 ? term : term.slice(0, colon)).trim()
    if (!(failpointNames as readonly string[]).includes(name)) return bad(`unknown failpoint "${name}" (known: ${failpointNames.join(', ')})`)
    if (points.some((p) => p.name === name)) return bad(`failpoint ${name} is given twice`)
    let error: string | null = null
    let after = 0
    let hangMs = 0
    let path: string | null = null
    for (const opt of colon < 0 ? [] : term.slice(colon + 1).split(',')) {
      const eq = opt.indexOf('=')
      const key = (eq < 0 ? opt : opt.slice(0, eq)).trim()
      const value = eq < 0 ? '' : opt.slice(eq + 1).trim()
      if (key === 'error' && /^E[A-Z0-9]+$/.test(value)) error = value
      else if (key === 'after' && /^\d+$/.test(value) && Number.isSafeInteger(Number(value))) after = Number(value)
      else if (key === 'hang' && /^\d+$/.test(value) && Number(value) <= 3_600_000) hangMs = Number(value)
      else if (key === 'path' && value !== '') path = value
      else return bad(`${name}: cannot read option "${opt.trim()}" (error=<ERRNO>, hang=<ms>, after=<n>, path=<text>)`)
    }
    if (error === null && hangMs === 0) return bad(`${name}: error=<ERRNO> or hang=<ms> is required`)
    points.push({ name: name as FailpointName, error, hangMs, after, path })
  }
  return ok(points)
}

/** The armed failpoints of this thread, with their call counts. */
export class Failpoints {
  readonly points: readonly Failpoint[]
  readonly #calls = new Map<FailpointName, number>()

  constructor(points: readonly Failpoint[]) {
    this.points = points
  }

  /**
   * The failpoints RAFTMQ_FAILPOINTS arms in `env` (null: none), or why they cannot be read.
   */
  static fromEnv(env: NodeJS.ProcessEnv = process.env): Result<Failpoints | null, 'INVALID_FAILPOINTS'> {
    const spec = env[FAILPOINTS_ENV]
    if (spec === undefined || spec.trim() === '') return ok(null)
    const parsed = parseFailpoints(spec)
    if (!parsed.ok) return parsed
    return ok(parsed.value.length === 0 ? null : new Failpoints(parsed.value))
  }

  /** Whether `name` is armed for a file at `path` at all (so the caller knows to track paths). */
  armed(name: FailpointName): boolean {
    return this.points.some((p) => p.name === name)
  }

  /**
   * Called where the point is, before the real call: the error to return instead (with
   * its errno code), or null to go on. Every call on a matching path counts.
   */
  hit(name: FailpointName, path: string): { readonly code: string; readonly message: string } | null {
    const p = this.points.find((q) => q.name === name)
    if (p === undefined || (p.path !== null && !path.includes(p.path))) return null
    const n = (this.#calls.get(name) ?? 0) + 1
    this.#calls.set(name, n)
    if (n <= p.after) return null
    if (p.hangMs > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, p.hangMs)
    if (p.error === null) return null
    return { code: p.error, message: `injected by failpoint ${name} (its call ${n} on a matching file; ${FAILPOINTS_ENV})` }
  }

  /** Matching calls of `name` so far. */
  calls(name: FailpointName): number {
    return this.#calls.get(name) ?? 0
  }

  /** One line for logs: what is armed. */
  describe(): string {
    return this.points.map((p) => `${p.name}: ${p.error === null ? '' : `error=${p.error},`}${p.hangMs > 0 ? `hang=${p.hangMs},` : ''}after=${p.after}${p.path === null ? '' : `,path=${p.path}`}`).join('; ')
  }
}

let fromEnv: Failpoints | null | undefined

/**
 * This thread's failpoints from RAFTMQ_FAILPOINTS, read once (null: none armed, the
 * normal case). Throws on a spec it cannot read: a node checks it before starting
 * anything (src/broker/node.ts), so only a caller that skipped that check sees it.
 */
export function envFailpoints(): Failpoints | null {
  if (fromEnv !== undefined) return fromEnv
  const r = Failpoints.fromEnv()
  if (!r.ok) throw new Error(r.error.message)
  fromEnv = r.value
  return fromEnv
}
