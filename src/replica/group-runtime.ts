/**
 * GroupRuntime: what one thread needs to host Raft groups — its write-ahead log, the log
 * engine over it, and the Ready loop that drives the groups — plus the retirement of WAL
 * segments. A worker thread has one (replica-host.ts), and so does the main thread for
 * the controller group.
 *
 * Retirement (DESIGN §4): once a segment is sealed, every group with records in it that
 * no checkpoint covers is asked to checkpoint (`RuntimeGroup.checkpoint`: its partition
 * store written and synced as of now); when all have, their Checkpoint records are
 * committed and the segments retired. One round at a time, off the acknowledgement
 * path (the store syncs go through LevelDB, the loop keeps turning meanwhile).
 *
 * Imports base, raft, storage, group and ./errors.
 */
import { fail, ok } from '../base/index.js'
import type { Result } from '../base/index.js'
import type { MemoryStorage, Ready } from '../raft/index.js'
import { LogEngine, Wal } from '../storage/index.js'
import type { WalFs, WalOpenError } from '../storage/index.js'
import { WorkerLoop } from '../group/index.js'
import type { ActorLogger, LoopEngine } from '../group/index.js'
import { storageFailureCode } from './errors.js'

/** What was wrong with a thread's storage: its WAL refused writes, or a group's store could not be written. */
export interface StorageTrouble {
  readonly code: 'STORAGE_FULL' | 'STORAGE_FAILED'
  readonly message: string
}

/** A hosted group, as retirement sees it. */
export interface RuntimeGroup {
  /** Writes and syncs the group's store as of now; resolves with the applied index it holds. */
  checkpoint(): Promise<Result<{ readonly index: number; readonly term: number }, string>>
}

export interface GroupRuntimeOptions {
  readonly fs: WalFs
  readonly walDir: string
  readonly log: ActorLogger
  readonly segmentBytes?: number
  /** Sealed segments allowed to wait for retirement before a round starts. */
  readonly sealedSegmentsMax?: number
  readonly schedule?: (fn: () => void) => void
  readonly after?: (ms: number, fn: () => void) => void
  /** Runs before each commit's write (WorkerLoopOptions.beforeCommit): the host sends what may leave. */
  readonly beforeCommit?: () => void
}

export class GroupRuntime {
  readonly engine: LogEngine
  readonly loop: WorkerLoop
  readonly #log: ActorLogger
  readonly #groups = new Map<number, RuntimeGroup>()
  readonly #checkpointing = new Map<number, Promise<boolean>>()
  /** Groups whose last checkpoint could not write their store, and why (reported at close). */
  readonly #checkpointFailures = new Map<number, StorageTrouble>()
  readonly #sealedMax: number
  #retiring: Promise<void> | null = null
  #retiredThrough = 0
  #closed = false

  private constructor(wal: Wal, opts: GroupRuntimeOptions) {
    this.#log = opts.log
    this.#sealedMax = opts.sealedSegmentsMax ?? 1
    this.engine = new LogEngine(wal)
    const engine = this.engine
    const loopEngine: LoopEngine = {
      stage: (group: number, rd: Ready) => engine.stage(group, rd),
      commit: () => {
        // a turn the disk refused is retried on a timer, which may fire after close: the WAL
        // is gone then, and what that turn held was never acknowledged (its proposals failed
        // when their groups stopped), so it stays refused rather than reach a closed WAL
        if (this.#closed) return { ok: false, error: { code: 'FULL', message: 'the write-ahead log is closed' } }
        const r = engine.commit()
        if (r.ok) {
          this.#maybeRetire()
          return r
        }
        return { ok: false, error: { code: r.error.code === 'WAL_FULL' ? 'FULL' : 'FAILED', message: r.error.message } }
      },
    }
    this.loop = new WorkerLoop(loopEngine, {
      log: opts.log,
      ...(opts.schedule ? { schedule: opts.schedule } : {}),
      ...(opts.after ? { after: opts.after } : {}),
      ...(opts.beforeCommit ? { beforeCommit: opts.beforeCommit } : {}),
    })
  }

  /** Opens a fresh WAL in `walDir` (recovery drained the old ones into the stores first). */
  static open(opts: GroupRuntimeOptions): Result<GroupRuntime, WalOpenError> {
    const opened = Wal.open({ fs: opts.fs, dir: opts.walDir, ...(opts.segmentBytes ? { segmentBytes: opts.segmentBytes } : {}) }, () => {})
    if (!opened.ok) return opened
    return ok(new GroupRuntime(opened.value.wal, opts))
  }

  /** A runtime over a WAL the caller opened (a simulator over a MemoryWalFs); `fs`/`walDir`/`segmentBytes` are unused. */
  static over(wal: Wal, opts: Omit<GroupRuntimeOptions, 'fs' | 'walDir' | 'segmentBytes'>): GroupRuntime {
    return new GroupRuntime(wal, opts as GroupRuntimeOptions)
  }

  /**
   * Hosts a group whose view was loaded from its store at applied `index`: its checkpoint
   * goes into this run's WAL, synced before this returns (the group may serve then).
   */
  host(id: number, view: MemoryStorage, checkpoint: { readonly index: number; readonly term: number }, group: RuntimeGroup): Result<null, 'STORAGE_FULL' | 'STORAGE_FAILED'> {
    this.engine.addGroup(id, view, checkpoint)
    this.#groups.set(id, group)
    const r = this.engine.commit()
    if (!r.ok) {
      this.#groups.delete(id)
      this.engine.removeGroup(id)
      return fail(storageFailureCode(r.error.code), r.error.message)
    }
    return ok(null)
  }

  /** Stops hosting a group (its Removed record is written with the next commit, or now when `sync`). */
  unhost(id: number, opts: { readonly removed: boolean }): void {
    this.#groups.delete(id)
    if (opts.removed) {
      this.#checkpointFailures.delete(id)
      this.engine.removeGroup(id)
      this.engine.commit()
    }
  }

  #maybeRetire(): void {
    if (this.#retiring || this.#closed) return
    const sealedThrough = this.engine.wal.activeSeq - 1
    if (sealedThrough - this.#retiredThrough < this.#sealedMax) return
    this.#retiring = this.#retire(sealedThrough).finally(() => {
      this.#retiring = null
      // segments sealed while this round ran: the next round starts now, not at the next commit
      if (this.#retiredThrough === sealedThrough) this.#maybeRetire()
    })
  }

  async #retire(throughSeq: number): Promise<void> {
    const due = this.engine.checkpointsDue(throughSeq)
    // one WAL commit for all their Checkpoint records, not one per group
    const results = await Promise.all(due.map((id) => this.#checkpoint(id, false)))
    if (this.#closed || !results.every(Boolean)) return
    if (this.engine.checkpointsDue(throughSeq).length > 0) return
    // idle groups: their checkpoint records move forward, their stores are not touched
    this.engine.carryForward(throughSeq)
    if (!this.engine.commit().ok || !this.engine.canRetire(throughSeq)) return
    const retired = this.engine.retire(throughSeq)
    if (!retired.ok) {
      this.#log.warn({ err: retired.error.message }, 'retiring WAL segments failed')
      return
    }
    this.#retiredThrough = throughSeq
    this.#log.debug({ throughSeq, checkpointed: due.length }, 'retired write-ahead log segments')
  }

  /**
   * Checkpoints group `id` and records it in the WAL (committed before this resolves), so
   * that recovery knows its store holds everything up to now. False when it could not.
   */
  checkpointNow(id: number): Promise<boolean> {
    return this.#checkpoint(id, true)
  }

  /**
   * One checkpoint of a group at a time: a second waits for the first (the engine's
   * bookkeeping needs it). `commit`: make its Checkpoint record durable now (else the
   * caller commits, once for many).
   */
  #checkpoint(id: number, commit: boolean): Promise<boolean> {
    const prev = this.#checkpointing.get(id) ?? Promise.resolve(true)
    const next = prev.then(() => this.#checkpointOnce(id, commit))
    this.#checkpointing.set(id, next)
    void next.finally(() => {
      if (this.#checkpointing.get(id) === next) this.#checkpointing.delete(id)
    })
    return next
  }

  async #checkpointOnce(id: number, commit: boolean): Promise<boolean> {
    const g = this.#groups.get(id)
    if (!g) return true
    this.engine.checkpointBegin(id)
    const r = await g.checkpoint()
    if (!r.ok) {
      this.engine.checkpointFailed(id)
      this.#checkpointFailures.set(id, { code: storageFailureCode(r.error.code), message: `group ${id}: its state could not be written to its store: ${r.error.message}` })
      this.#log.warn({ group: id, err: r.error }, 'checkpoint failed: the WAL segments it needs stay until the next try')
      return false
    }
    this.#checkpointFailures.delete(id)
    this.engine.checkpointed(id, r.value)
    return commit ? this.engine.commit().ok : true
  }

  /**
   * Waits for a retirement round in flight and closes the WAL (close the groups first).
   * Resolves with what was wrong with the storage at the end, empty when nothing was: why
   * the loop refused writes (STORAGE_FULL: the disk was full; STORAGE_FAILED: an I/O
   * error stopped every group) or why the last commit failed, and the groups whose last
   * checkpoint (the one at close, normally) could not write their store.
   */
  async close(): Promise<StorageTrouble[]> {
    this.#closed = true
    while (this.#retiring) await this.#retiring
    const last = this.engine.commit()
    this.engine.wal.close()
    // background segment preparation must stop before the directory is opened again
    await this.engine.wal.settled()
    const troubles: StorageTrouble[] = []
    const blocked = this.loop.blocked
    if (blocked) troubles.push({ code: blocked.code, message: blocked.message })
    else if (!last.ok) troubles.push({ code: storageFailureCode(last.error.code), message: last.error.message })
    troubles.push(...this.#checkpointFailures.values())
    return troubles
  }
}
