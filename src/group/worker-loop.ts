/**
 * WorkerLoop: the one Ready loop of a worker thread, over every group it hosts (DESIGN
 * §1, §4). A turn:
 *   1. takes the Ready of every group that has work (each sends what may go at once:
 *      a leader's appends leave before its own sync, thesis §10.2.1);
 *   2. stages their durable parts in the engine and commits: ONE write and ONE sync for
 *      all of them (none when the turn only moves commit indexes);
 *   3. only then acknowledges (messagesAfterPersist), applies and advances each group.
 * Whatever arrives while the thread is blocked in the sync is handled by the next turn:
 * group commit across groups, with no timer (Ra's rule: the batch is what queued meanwhile).
 * Groups a turn left with more work (a lone voter's commit right after its own write) go
 * again within the same turn, a few rounds at most, so a single send costs one turn.
 *
 * The engine is injected (`LoopEngine`): the WAL engine in a worker, an in-memory one in
 * tests and the simulator, which also inject the scheduler and timers.
 *
 * Storage failures are values from the engine. STORAGE_FULL: the turn's Readys stay
 * staged and the commit is retried every `retryMs` until it succeeds (their proposals
 * stay pending, and are answered then), while new proposals are refused with STORAGE_FULL
 * (retriable) and reads go on; no restart needed. STORAGE_FAILED
 * (an I/O error: after a failed fsync the page cache cannot be trusted): every group stops
 * and fails its pending proposals (fail-stop).
 *
 * Imports base and ./actor only.
 */
import { assert } from '../base/index.js'
import type { Ready } from '../raft/index.js'
import type { ActorLogger, ActorLoop, LoopActor } from './actor.js'

export interface LoopEngine {
  /** Queues the durable part of group `group`'s Ready for this turn's commit. */
  stage(group: number, rd: Ready): void
  /** Makes the staged Readys durable (one write, one sync, when any needs it) and current. */
  commit(): { readonly ok: true } | { readonly ok: false; readonly error: { readonly code: 'FULL' | 'FAILED'; readonly message: string } }
}

export interface WorkerLoopOptions {
  readonly log: ActorLogger
  /** Runs a turn soon, after what is already queued (default setImmediate). */
  readonly schedule?: (fn: () => void) => void
  /** Runs `fn` after `ms` (default setTimeout, unref'd). */
  readonly after?: (ms: number, fn: () => void) => void
  /** How often a commit refused for a full disk is retried. */
  readonly retryMs?: number
  /**
   * Runs before each commit's write: what the turn's Readys may send at once (a leader's
   * appends) leaves then, so followers write while this thread syncs.
   */
  readonly beforeCommit?: () => void
}

/** Rounds of follow-up work one turn takes on before it yields to the event loop. */
const ROUNDS_MAX = 4
const RETRY_MS_DEFAULT = 200

type Work = Array<readonly [LoopActor, Ready]>

export class WorkerLoop implements ActorLoop {
  readonly #engine: LoopEngine
  readonly #log: ActorLogger
  readonly #schedule: (fn: () => void) => void
  readonly #after: (ms: number, fn: () => void) => void
  readonly #retryMs: number
  readonly #beforeCommit: () => void
  readonly #actors = new Set<LoopActor>()
  #dirty = new Set<LoopActor>()
  #scheduled = false
  /** A turn whose commit the disk refused, waiting to be retried. */
  #stalled: Work | null = null
  #blocked: { code: 'STORAGE_FULL' | 'STORAGE_FAILED'; message: string } | null = null

  constructor(engine: LoopEngine, opts: WorkerLoopOptions) {
    this.#engine = engine
    this.#log = opts.log
    this.#schedule = opts.schedule ?? ((fn) => setImmediate(fn))
    this.#after = opts.after ?? ((ms, fn) => setTimeout(fn, ms).unref())
    this.#retryMs = opts.retryMs ?? RETRY_MS_DEFAULT
    this.#beforeCommit = opts.beforeCommit ?? (() => {})
  }

  get blocked(): { readonly code: 'STORAGE_FULL' | 'STORAGE_FAILED'; readonly message: string } | null {
    return this.#blocked
  }

  add(actor: LoopActor): void {
    this.#actors.add(actor)
    this.kick(actor)
  }

  /** Stops hosting `actor` (stopped first, so no Ready of it is in flight afterwards). */
  remove(actor: LoopActor): void {
    actor.stop()
    this.#actors.delete(actor)
    this.#dirty.delete(actor)
  }

  kick(actor: LoopActor): void {
    this.#dirty.add(actor)
    if (this.#scheduled || this.#stalled || this.#blocked?.code === 'STORAGE_FAILED') return
    this.#scheduled = true
    this.#schedule(() => this.#turn())
  }

  #turn(): void {
    this.#scheduled = false
    for (let round = 0; round < ROUNDS_MAX && this.#dirty.size > 0; round++) {
      if (this.#stalled || this.#blocked?.code === 'STORAGE_FAILED') return
      const dirty = this.#dirty
      this.#dirty = new Set()
      const work: Work = []
      for (const a of dirty) {
        const rd = a.takeReady()
        if (rd === null) continue
        this.#engine.stage(a.groupId, rd)
        work.push([a, rd])
      }
      if (work.length === 0) continue
      if (!this.#commit(work)) return
    }
    if (this.#dirty.size > 0 && !this.#scheduled) {
      this.#scheduled = true
      this.#schedule(() => this.#turn())
    }
  }

  /** Commits and finishes `work`; false when the disk refused (the work is kept for a retry). */
  #commit(work: Work): boolean {
    this.#beforeCommit()
    const r = this.#engine.commit()
    if (!r.ok) {
      this.#refused(work, r.error.code, r.error.message)
      return false
    }
    if (this.#blocked?.code === 'STORAGE_FULL') {
      this.#log.info({}, 'the disk took writes again: proposals accepted')
      this.#blocked = null
    }
    for (const [a, rd] of work) {
      a.afterPersist(rd)
      this.#dirty.add(a)
    }
    return true
  }

  #refused(work: Work, code: 'FULL' | 'FAILED', message: string): void {
    if (code === 'FULL') {
      if (this.#blocked === null) this.#log.error({ err: message, retryMs: this.#retryMs }, 'the disk is full: writes refused with STORAGE_FULL until space is freed')
      // the stalled Readys' proposals stay pending: their entries are written once space returns
      this.#blocked = { code: 'STORAGE_FULL', message }
      this.#stalled = work
      this.#after(this.#retryMs, () => this.#retry())
      return
    }
    this.#blocked = { code: 'STORAGE_FAILED', message }
    this.#stalled = null
    this.#log.error({ err: message }, 'the write-ahead log failed: every group of this worker stopped (restart the node once the disk is fixed)')
    for (const a of this.#actors) a.failStorage(message)
  }

  #retry(): void {
    const work = this.#stalled
    assert(work !== null, 'retry without a stalled turn')
    this.#stalled = null
    if (this.#commit(work)) this.#turn()
  }
}
