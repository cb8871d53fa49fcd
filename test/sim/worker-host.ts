/**
 * The simulated worker thread of the `worker` storage host (options.ts `storage`): one
 * node's group hosted the production way, a GroupActor inside a WorkerLoop (src/group),
 * over a LoopEngine the simulator gives it (the real LogEngine over the node's WAL,
 * wrapped to aim storage faults at its commits and watch what they make durable).
 *
 * Only the thread is simulated, so that a seed replays exactly: the loop's scheduler
 * (setImmediate) and timers (setTimeout) are injected and run on the simulator's clock.
 * In each time unit the thread is free, it takes, in this order: what arrived (peer
 * messages, client proposals, the host's own work such as snapshots: `post`), a tick if
 * one is due, the timers that are due, and the loop turns queued by then (setImmediate's
 * order: what a turn queues for itself runs in the next unit).
 *
 * A commit that syncs blocks the thread for a simulated disk latency (`block`): the WAL
 * syncs on the worker thread itself (DESIGN §4). The turn runs to its end at once, but
 * on the thread's own clock: what it sends after the commit (messagesAfterPersist, and
 * the answers to proposals) leaves only once the sync has returned, and nothing that
 * arrives meanwhile is taken before. A leader's appends, sent when the loop takes its
 * Ready, leave before its own sync.
 *
 * Peer messages leave through GroupActorOptions.sendToPeers, stamped with the thread's
 * clock; `sent` hands the simulator those whose time has come. A crash drops the thread
 * with everything still queued in it.
 */
import type { Prng } from '../../src/base/index.js'
import { GroupActor, WorkerLoop } from '../../src/group/index.js'
import type { ActorLogger, ActorStateMachine, GroupActorOptions, LoopEngine } from '../../src/group/index.js'
import type { MemoryStorage, Message, NodeId } from '../../src/raft/index.js'

export interface WorkerHostOptions {
  readonly nodeId: NodeId
  readonly groupId: number
  /** The group's log view (the engine keeps it current). */
  readonly view: MemoryStorage
  readonly applied: number
  readonly prng: Prng
  readonly raft: GroupActorOptions<null>['raft']
  readonly engine: LoopEngine
  readonly stateMachine: ActorStateMachine<null>
  readonly log: ActorLogger
  /** Time units before the loop retries a commit the disk refused (its `after`). */
  readonly retryUnits: number
  readonly now: number
}

interface Timed {
  readonly at: number
  readonly fn: () => void
}

export class WorkerHost {
  readonly loop: WorkerLoop
  readonly actor: GroupActor<null>
  /** Where the thread is in simulated time: the current unit when free, later while a sync blocks it. */
  #clock: number
  #mailbox: (() => void)[] = []
  #immediates: (() => void)[] = []
  #timers: Timed[] = []
  #outbox: { readonly at: number; readonly m: Message }[] = []
  #answers: Timed[] = []
  #applies: Timed[] = []

  constructor(o: WorkerHostOptions) {
    this.#clock = o.now
    this.loop = new WorkerLoop(o.engine, {
      log: o.log,
      schedule: (fn) => this.#immediates.push(fn),
      after: (_ms, fn) => this.#timers.push({ at: this.#clock + o.retryUnits, fn }),
    })
    this.actor = new GroupActor<null>(this.loop, {
      groupId: o.groupId,
      nodeId: o.nodeId,
      storage: o.view,
      stateMachine: o.stateMachine,
      prng: o.prng,
      applied: o.applied,
      raft: o.raft,
      log: o.log,
      sendToPeers: (msgs) => {
        for (const m of msgs) this.#outbox.push({ at: this.#clock, m })
      },
    })
    this.loop.add(this.actor)
  }

  /** Is the thread blocked (in a sync) at `now`? */
  blocked(now: number): boolean {
    return this.#clock > now
  }

  /** When the thread is free again. */
  get freeAt(): number {
    return this.#clock
  }

  /** The commit just made syncs: the thread is blocked for `units` more. */
  block(units: number): void {
    this.#clock += units
  }

  /** Work for the thread, taken in order once it is free. */
  post(fn: () => void): void {
    this.#mailbox.push(fn)
  }

  /** An answer to a client, given once the thread has got as far as it is now. */
  answer(fn: () => void): void {
    this.#answers.push({ at: this.#clock, fn })
  }

  /**
   * The record of an apply, made once the thread has got as far as it is now: an apply
   * that ran after a sync the simulated thread is still blocked in has not happened yet,
   * and a crash inside that sync undoes it (what it committed may rest on that write).
   */
  record(fn: () => void): void {
    this.#applies.push({ at: this.#clock, fn })
  }

  /** A crash just after the sync returned: every apply of the turn happened (its clients never heard). */
  settleApplies(): void {
    const due = this.#applies
    this.#applies = []
    for (const a of due) a.fn()
  }

  /** One time unit of the thread (nothing while it is blocked); `tick`: a tick is due. */
  run(now: number, tick: boolean): void {
    if (this.#clock > now) return
    this.#clock = now
    const mail = this.#mailbox
    this.#mailbox = []
    for (const fn of mail) fn()
    if (tick) this.actor.tick()
    if (this.#timers.length > 0) {
      const due = this.#timers.filter((t) => t.at <= now)
      this.#timers = this.#timers.filter((t) => t.at > now)
      for (let k = 0; k < due.length; k++) {
        if (this.#clock > now) {
          this.#timers.push(...due.slice(k))
          break
        }
        due[k]!.fn()
      }
    }
    const queued = this.#immediates
    this.#immediates = []
    for (let k = 0; k < queued.length; k++) {
      if (this.#clock > now) {
        // blocked in a sync: the rest waits, ahead of what was queued meanwhile
        this.#immediates = queued.slice(k).concat(this.#immediates)
        break
      }
      queued[k]!()
    }
  }

  /** Messages the thread sent by `now`, in order. */
  sent(now: number): Message[] {
    if (this.#outbox.length === 0) return []
    const out: Message[] = []
    let k = 0
    while (k < this.#outbox.length && this.#outbox[k]!.at <= now) out.push(this.#outbox[k++]!.m)
    this.#outbox = k === this.#outbox.length ? [] : this.#outbox.slice(k)
    return out
  }

  /** Gives the answers the thread had got to by `now`. */
  answered(now: number): void {
    const [applies, laterApplies] = splitDue(this.#applies, now)
    this.#applies = laterApplies
    for (const a of applies) a.fn()
    const [answers, laterAnswers] = splitDue(this.#answers, now)
    this.#answers = laterAnswers
    for (const a of answers) a.fn()
  }
}

/** The ones due by `now`, and the rest (split before any runs: running one may queue more). */
function splitDue(q: Timed[], now: number): [Timed[], Timed[]] {
  if (q.length === 0) return [q, q]
  return [q.filter((a) => a.at <= now), q.filter((a) => a.at > now)]
}
