/**
 * The controller: the metadata Raft group (group 0), run on the main thread because the
 * main thread routes by its state and its traffic is rare (topic changes, producer ids).
 * It is the same GroupActor as a partition's, over LevelDB at `<data-dir>/groups/0`,
 * applying to the MetadataStateMachine. Its log is small, so on start it is replayed
 * from the beginning rather than snapshotted.
 *
 * Imports base, storage, controller and group.
 */
import { Prng } from '../base/index.js'
import type { Result } from '../base/index.js'
import { LevelRaftStorage } from '../storage/index.js'
import { MetadataStateMachine, encodeMetadataCommand } from '../controller/index.js'
import type { MetadataCommand, MetadataResult } from '../controller/index.js'
import { GroupActor } from '../group/index.js'
import type { ActorLogger, ActorProposeError } from '../group/index.js'
import type { Entry, Ready } from '../raft/index.js'

export const CONTROLLER_GROUP_ID = 0

export class Controller {
  readonly metadata = new MetadataStateMachine()
  readonly #actor: GroupActor<MetadataResult>
  readonly #storage: LevelRaftStorage
  readonly #log: ActorLogger

  private constructor(storage: LevelRaftStorage, nodeId: number, electionTicks: number, log: ActorLogger) {
    this.#storage = storage
    this.#log = log
    this.#actor = new GroupActor<MetadataResult>({
      groupId: CONTROLLER_GROUP_ID,
      nodeId,
      storage: { raft: storage, persist: (rd: Ready) => storage.persist(rd) },
      stateMachine: { apply: (e: Entry) => this.metadata.apply(e.index, e.data) },
      prng: new Prng(nodeId),
      applied: 0,
      raft: { electionTicks, heartbeatTicks: 1 },
      log,
    })
  }

  static async open(opts: { dir: string; nodeId: number; voters: readonly number[]; electionTicks: number; log: ActorLogger }): Promise<Controller> {
    const opened = await LevelRaftStorage.open(opts.dir, { voters: opts.voters })
    if (!opened.ok) throw new Error(`controller group: ${opened.error.message}`)
    const c = new Controller(opened.value, opts.nodeId, opts.electionTicks, opts.log)
    if (opts.voters.length === 1 && opts.voters[0] === opts.nodeId) c.#actor.campaign()
    return c
  }

  tick(): void {
    this.#actor.tick()
  }

  isLeader(): boolean {
    return this.#actor.isLeader()
  }

  /** Resolves once the log replayed on start is applied and this node leads (single node: at once). */
  async ready(timeoutMs: number): Promise<boolean> {
    const until = Date.now() + timeoutMs
    while (Date.now() < until) {
      if (this.#actor.isLeader()) {
        // an empty proposal commits only after everything before it is applied
        const r = await this.#actor.propose([new Uint8Array(0)])
        if (r.ok) return true
      }
      await new Promise((r) => setTimeout(r, 10))
    }
    return false
  }

  /** Commits a metadata command and returns its result. */
  async submit(cmd: MetadataCommand): Promise<Result<MetadataResult, ActorProposeError>> {
    const r = await this.#actor.propose([encodeMetadataCommand(cmd)])
    if (!r.ok) return r
    return { ok: true, value: r.value.results[0]! }
  }

  async close(): Promise<void> {
    await this.#actor.stop()
    await this.#storage.close()
    this.#log.debug({ group: CONTROLLER_GROUP_ID }, 'controller closed')
  }
}
