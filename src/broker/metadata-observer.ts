/**
 * MetadataObserver: the metadata of a node that is not a voter of the metadata group (the
 * group runs on the first three nodes; a fourth, or a node added to the running cluster,
 * observes). The group's leader sends such a node its whole metadata state (the bytes a
 * checkpoint saves) when the node's link comes up, when it becomes leader, and after each
 * change it applies; the observer keeps the newest (by applied index), so a late message
 * from a deposed leader cannot take it back in time. Every state it holds was committed:
 * the node acts on it as a voter acts on its own replica (LocalReplicas), only later.
 *
 * Nothing is kept on disk: a restarted observer waits for its first state (`ready`) before
 * it opens or removes anything, so a node never acts on metadata older than what it had.
 *
 * Imports base, controller, group (types) and ./controller (the interface).
 */
import { fail } from '../base/index.js'
import type { Result } from '../base/index.js'
import { MetadataStateMachine } from '../controller/index.js'
import type { MetadataCommand, MetadataResult } from '../controller/index.js'
import type { ActorLogger, ActorProposeError } from '../group/index.js'
import type { Message } from '../raft/index.js'
import type { StorageTrouble } from '../replica/group-runtime.js'
import type { MetadataReplica } from './controller.js'

export class MetadataObserver implements MetadataReplica {
  #metadata = new MetadataStateMachine()
  #from = 0
  #received = false
  readonly #waiting = new Set<(got: boolean) => void>()
  readonly #leaderOf: () => number | undefined
  readonly #onApplied: () => void
  readonly #log: ActorLogger

  constructor(opts: { leaderOf: () => number | undefined; onApplied: () => void; log: ActorLogger }) {
    this.#leaderOf = opts.leaderOf
    this.#onApplied = opts.onApplied
    this.#log = opts.log
  }

  get metadata(): MetadataStateMachine {
    return this.#metadata
  }

  /** Node `from` (the metadata group's leader when it sent them) sent `bytes`, its whole state. */
  install(from: number, bytes: Uint8Array): void {
    const r = MetadataStateMachine.restore(bytes)
    if (!r.ok) {
      this.#log.warn({ peer: from, err: r.error.message }, 'malformed metadata from the controller; dropped')
      return
    }
    this.#from = from
    if (this.#received && r.value.appliedIndex <= this.#metadata.appliedIndex) return
    const first = !this.#received
    // a node's cached view (clients' metadata) compares versions: keep them growing
    r.value.version = Math.max(r.value.version, this.#metadata.version + 1)
    this.#metadata = r.value
    this.#received = true
    if (first) this.#log.info({ peer: from, appliedIndex: r.value.appliedIndex, topics: r.value.topics.size }, 'received the cluster metadata from the controller')
    for (const w of this.#waiting) w(true)
    this.#onApplied()
  }

  isLeader(): boolean {
    return false
  }

  get leader(): number {
    return this.#leaderOf() ?? this.#from
  }

  get syncs(): number {
    return 0
  }

  tick(): void {}

  peerDown(_id: number): void {}

  step(m: Message): void {
    // only the group's voters exchange its messages: one here is a voter's stale view of us
    this.#log.debug({ peer: m.from, type: m.type }, 'a metadata group message for an observer; dropped')
  }

  ready(timeoutMs: number): Promise<boolean> {
    if (this.#received) return Promise.resolve(true)
    return new Promise((resolve) => {
      const done = (got: boolean): void => {
        clearTimeout(timer)
        this.#waiting.delete(done)
        resolve(got)
      }
      const timer = setTimeout(() => done(false), timeoutMs)
      this.#waiting.add(done)
    })
  }

  submit(_cmd: MetadataCommand): Promise<Result<MetadataResult, ActorProposeError>> {
    return Promise.resolve(fail('NOT_LEADER', 'this node observes the metadata group; it does not lead it'))
  }

  close(): Promise<StorageTrouble[]> {
    for (const w of this.#waiting) w(false)
    return Promise.resolve([])
  }
}
