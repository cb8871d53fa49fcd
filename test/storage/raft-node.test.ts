import { Buffer } from 'node:buffer'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { Prng } from '../../src/base/index.js'
import { EntryType, RaftNode, Role } from '../../src/raft/index.js'
import type { Entry } from '../../src/raft/index.js'
import type { LevelRaftStorage } from '../../src/storage/index.js'
import { openStore, tempDir } from './helpers.js'

let dir: string
let remove: () => Promise<void>

beforeEach(async () => {
  ;({ dir, remove } = await tempDir())
})

afterEach(async () => {
  await remove()
})

/** A single-voter group: the host loop of the Ready contract over a real store, applying into `applied`. */
class Host {
  readonly node: RaftNode
  readonly applied: Entry[] = []

  constructor(
    readonly storage: LevelRaftStorage,
    appliedIndex: number,
  ) {
    this.node = new RaftNode({ id: 1, storage, prng: new Prng(11), applied: appliedIndex })
  }

  async drain(): Promise<void> {
    while (this.node.hasReady()) {
      const rd = this.node.ready()
      expect(rd.messages).toHaveLength(0) // alone: nobody to talk to
      await this.storage.persist(rd)
      for (const e of rd.committedEntries) this.applied.push(e)
      this.node.advance()
    }
  }

  /** What the state machine of this test saves: the data of every applied normal entry, in order. */
  blob(): Uint8Array {
    return Buffer.from(this.applied.filter((e) => e.type === EntryType.Normal && e.data.length > 0).map((e) => Buffer.from(e.data).toString('hex')).join(','))
  }
}

const payload = (n: number, bytes: number) => Buffer.alloc(bytes, n & 0xff)

describe('storage - the Raft core on a real disk', () => {
  it('a single node elects itself, commits proposed batches, and restarts with the same log and commit', async () => {
    let host = new Host(await openStore(dir, { voters: [1], entryCacheBytesMax: 4096 }), 0)
    host.node.campaign()
    await host.drain()
    expect(host.node.role).toBe(Role.Leader)
    const proposed: Buffer[] = []
    for (const [count, bytes] of [
      [1, 10],
      [10, 100],
      [100, 100],
      [1, 116 * 1024],
      [500, 20],
    ] as const) {
      const batch = Array.from({ length: count }, (_, k) => payload(proposed.length + k, bytes))
      proposed.push(...batch)
      const r = host.node.propose(batch)
      expect(r.ok).toBe(true)
      await host.drain()
    }
    const before = host.node.status()
    expect(before.commit).toBe(before.lastIndex)
    const hex = (bs: readonly Uint8Array[]) => bs.map((b) => Buffer.from(b).toString('hex'))
    expect(hex(host.applied.filter((e) => e.data.length > 0).map((e) => e.data))).toEqual(hex(proposed))

    // nothing saved by the state machine: a restart re-applies the whole log, from disk
    await host.storage.close()
    host = new Host(await openStore(dir, { voters: [1], entryCacheBytesMax: 4096 }), 0)
    const after = host.node.status()
    expect([after.term, after.vote, after.commit, after.lastIndex]).toEqual([before.term, before.vote, before.commit, before.lastIndex])
    expect(host.storage.cacheInfo().firstIndex).toBe(1) // the unapplied log is all in memory for the core
    await host.drain()
    expect(hex(host.applied.filter((e) => e.data.length > 0).map((e) => e.data))).toEqual(hex(proposed))
    expect(host.node.role).toBe(Role.Follower) // a restarted node waits for an election
    await host.storage.close()
  })

  it('restarts from the saved applied state and re-applies exactly the entries after it', async () => {
    let host = new Host(await openStore(dir, { voters: [1], entryCacheBytesMax: 4096 }), 0)
    host.node.campaign()
    await host.drain()
    for (let k = 0; k < 20; k++) {
      host.node.propose(Array.from({ length: 25 }, (_, j) => payload(k * 25 + j, 64)))
      await host.drain()
    }
    const status = host.node.status()
    const all = host.applied.slice()
    const savedAt = all[200]!.index
    await host.storage.saveApplied(savedAt, Uint8Array.of(7))
    await host.storage.close()

    const st = await openStore(dir, { voters: [1], entryCacheBytesMax: 4096 })
    const saved = st.loadApplied()
    expect(saved?.index).toBe(savedAt)
    host = new Host(st, saved!.index)
    const after = host.node.status()
    expect({ term: after.term, commit: after.commit, lastIndex: after.lastIndex, firstIndex: after.firstIndex }).toEqual({
      term: status.term,
      commit: status.commit,
      lastIndex: status.lastIndex,
      firstIndex: status.firstIndex,
    })
    await host.drain()
    // re-applied: exactly the committed entries after the saved point, same bytes
    expect(host.applied.map((e) => e.index)).toEqual(all.filter((e) => e.index > savedAt).map((e) => e.index))
    expect(host.applied.map((e) => Buffer.from(e.data).toString('hex'))).toEqual(all.filter((e) => e.index > savedAt).map((e) => Buffer.from(e.data).toString('hex')))

    // it is still a working group: a new term, more proposals, another restart
    host.node.campaign()
    await host.drain()
    expect(host.node.role).toBe(Role.Leader)
    expect(host.node.term).toBe(status.term + 1)
    host.node.propose([payload(1, 10), payload(2, 10)])
    await host.drain()
    const end = host.node.status()
    await host.storage.saveApplied(end.commit, host.blob())
    await host.storage.close()
    const st2 = await openStore(dir, { voters: [1] })
    expect(st2.hardState()).toMatchObject({ term: end.term, commit: end.commit, vote: 1 })
    expect(st2.lastIndex()).toBe(end.lastIndex)
    const log = await st2.readEntries(1, st2.lastIndex() + 1)
    expect(log.ok && log.value.map((e) => e.index)).toEqual(Array.from({ length: end.lastIndex }, (_, k) => k + 1))
    await st2.close()
  })

  it('proposals arriving during a sync go into the next write (group commit), and retention compaction keeps the node consistent', async () => {
    const host = new Host(await openStore(dir, { voters: [1], entryCacheBytesMax: 1 << 16 }), 0)
    host.node.campaign()
    await host.drain()
    let writes = 0
    for (let round = 0; round < 30; round++) {
      const rd = host.node.ready()
      const persisting = host.storage.persist(rd)
      writes++
      // proposals that arrive while the write is in flight
      for (let k = 0; k < 3; k++) expect(host.node.propose([payload(round * 3 + k, 50)]).ok).toBe(true)
      await persisting
      for (const e of rd.committedEntries) host.applied.push(e)
      host.node.advance()
    }
    await host.drain()
    // 90 proposals + the leader's empty entry, in one write per round, not one per proposal
    expect(host.node.commit).toBe(91)
    expect(writes).toBeLessThan(40)

    await host.storage.saveApplied(host.node.commit, host.blob())
    await host.storage.compact(60)
    expect(host.node.firstIndex).toBe(61)
    host.node.propose([payload(0, 10)])
    await host.drain()
    expect(host.node.commit).toBe(92)
    await host.storage.close()
    const st = await openStore(dir, { voters: [1] })
    const again = new Host(st, st.loadApplied()!.index)
    expect(again.node.status()).toMatchObject({ firstIndex: 61, lastIndex: 92, commit: 92 })
    await again.drain()
    expect(again.applied.map((e) => e.index)).toEqual([92])
    await st.close()
  })
})
