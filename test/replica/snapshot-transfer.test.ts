/**
 * Catch-up by snapshot, sender and receiver together (src/replica/snapshot-sender.ts,
 * snapshot-receiver.ts) over an injected clock, a message queue that can lose and repeat,
 * and in-memory stores: a real PartitionStateMachine on each side, real record batches.
 * What the partition replica adds (the core, the WAL, the restore hook) is the
 * simulator's (test/sim/partition-sim.ts) and the cluster test's (test/broker/).
 */
import { describe, expect, it } from 'vitest'
import { fail, limits, ok } from '../../src/base/index.js'
import type { Result } from '../../src/base/index.js'
import type { Message } from '../../src/raft/index.js'
import { PartitionStateMachine, batchOf, encodeCleanup, encodeProduce } from '../../src/partition/index.js'
import { encodeRecordBatch, setBaseOffset } from '../../src/protocol/record-batch.js'
import { SnapshotReceiver, SnapshotSender, TransferSlots, decodeTransferItem } from '../../src/replica/index.js'
import type { TransferItem } from '../../src/replica/index.js'

const LEADER = 2
const FOLLOWER = 1
const TERM = 5
const TIMING = { requestRetryMs: 100, idleTimeoutMs: 1_000 }

interface Logged {
  readonly level: string
  readonly msg: string
  readonly obj: Record<string, unknown>
}

/** `count` one-record batches applied from Raft index 1 on: the state machine and the stored (stamped) batches. */
function partition(count: number, records = 1): { sm: PartitionStateMachine; stored: Map<number, Uint8Array>; entries: Uint8Array[] } {
  const sm = new PartitionStateMachine()
  const stored = new Map<number, Uint8Array>()
  const entries: Uint8Array[] = []
  for (let i = 1; i <= count; i++) {
    const data = encodeProduce({ atomic: false }, encodeRecordBatch(Array.from({ length: records }, (_, k) => ({ value: `batch ${i} record ${k}`, timestamp: 1_000 + i }))))
    entries.push(data)
    const r = sm.apply(i, data)
    if (r.kind !== 'produce' || !r.ok) throw new Error(`apply ${i}: ${JSON.stringify(r)}`)
    const batch = batchOf(data).slice()
    setBaseOffset(batch, r.baseOffset)
    stored.set(r.baseOffset, batch)
  }
  return { sm, stored, entries }
}

/** The follower's state: the first `n` of the leader's entries applied (a committed prefix). */
function prefixOf(entries: readonly Uint8Array[], n: number): PartitionStateMachine {
  const sm = new PartitionStateMachine()
  for (let i = 1; i <= n; i++) sm.apply(i, entries[i - 1]!)
  return sm
}

class Harness {
  now = 0
  readonly queue: Message[] = []
  /** Messages that left, for what the tests look at. */
  readonly sent: { readonly from: number; readonly item: TransferItem }[] = []
  drop: (m: Message, item: TransferItem) => boolean = () => false
  leading = true
  readonly followerRaft = { term: TERM, leader: LEADER, commit: 0 }
  readonly reports: [number, boolean][] = []
  readonly installs: Message[] = []
  installTakes = true
  readonly records = new Map<number, Uint8Array>()
  pending: { index: number; term: number } | null = null
  /** What happened to the follower's store and core, in order. */
  readonly events: string[] = []
  readonly logs: Logged[] = []
  goneBelow = -1
  readonly sender: SnapshotSender
  readonly receiver: SnapshotReceiver
  readonly leaderSm: PartitionStateMachine
  followerSm: PartitionStateMachine

  constructor(leader: ReturnType<typeof partition>, follower: PartitionStateMachine) {
    this.leaderSm = leader.sm
    this.followerSm = follower
    this.followerRaft.commit = follower.appliedIndex
    const log = (level: string) => (obj: object, msg: string) => void this.logs.push({ level, msg, obj: obj as Record<string, unknown> })
    const logger = { info: log('info'), warn: log('warn'), error: log('error'), debug: log('debug') }
    const send = (m: Message): void => void this.queue.push(m)
    this.sender = new SnapshotSender({
      self: LEADER,
      where: { group: 9 },
      log: logger,
      now: () => this.now,
      send,
      leadingTerm: () => (this.leading ? TERM : null),
      reportSnapshot: (to, succeeded) => void this.reports.push([to, succeeded]),
      capture: () => {
        const sm = this.leaderSm
        const first = sm.locate(sm.logStartOffset, 0, 1)
        return {
          meta: { index: sm.appliedIndex, term: TERM, conf: { voters: [1, 2, 3] } },
          state: sm.snapshot(),
          firstOffset: first.kind === 'ok' ? first.batches[0]!.baseOffset : sm.nextOffset,
          endOffset: sm.nextOffset,
          recordBytes: sm.retainedBytes,
          batches: sm.batchCount,
        }
      },
      readChunk: async (at, end): Promise<Result<Uint8Array[], 'RANGE_GONE' | 'STORE_FAILED'>> => {
        await null
        if (at < this.goneBelow) return fail('RANGE_GONE', `offset ${at} is not retained`)
        const loc = this.leaderSm.locate(Math.max(at, this.leaderSm.logStartOffset), limits.snapshot.chunkBytesMax, limits.snapshot.chunkBatchesMax)
        if (loc.kind !== 'ok') return fail('RANGE_GONE', `offset ${at} is not retained`)
        return ok(loc.batches.filter((b) => b.baseOffset < end).map((b) => leader.stored.get(b.baseOffset)!))
      },
      timing: TIMING,
      slots: new TransferSlots(),
    })
    this.receiver = new SnapshotReceiver({
      self: FOLLOWER,
      where: { group: 9 },
      log: logger,
      store: {
        putRecord: (offset, batch) => void this.records.set(offset, batch.slice()),
        putPendingSnapshot: (a) => {
          this.pending = a === null ? null : { index: a.index, term: a.term }
          this.events.push(a === null ? 'pending dropped' : `pending ${a.index} staged`)
        },
        flush: async ({ sync }) => {
          await null
          if (sync) this.events.push('store synced')
          return ok(undefined)
        },
      },
      now: () => this.now,
      send,
      raft: () => this.followerRaft,
      nextOffset: () => this.followerSm.nextOffset,
      install: (m) => {
        this.installs.push(m)
        this.events.push(`core given ${m.snapshot!.metadata.index}`)
        return this.installTakes
      },
      timing: TIMING,
      slots: new TransferSlots(),
    })
  }

  /** Delivers what is queued (and what that sends) until nothing moves. */
  async pump(rounds = 10_000): Promise<void> {
    for (let i = 0; i < rounds; i++) {
      for (let k = 0; k < 8; k++) await null
      const m = this.queue.shift()
      if (m === undefined) {
        for (let k = 0; k < 8; k++) await null
        if (this.queue.length === 0) return
        continue
      }
      const item = decodeTransferItem(m.snapshot!.data)
      if (!item.ok) throw new Error(item.error.message)
      this.sent.push({ from: m.from, item: item.value })
      if (this.drop(m, item.value)) continue
      if (m.to === FOLLOWER) this.receiver.onItem(m.from, m.term, m.snapshot!.metadata, item.value)
      else this.sender.onItem(m.from, m.term, m.snapshot!.metadata, item.value)
    }
    throw new Error('the transfer did not settle')
  }

  asks(what: 'state' | 'records'): number {
    return this.sent.filter((s) => s.item.kind === 'ask' && s.item.what === what).length
  }

  ends(from: number): TransferItem[] {
    return this.sent.filter((s) => s.from === from && s.item.kind === 'end').map((s) => s.item)
  }
}

describe('snapshot transfer - a follower behind the log catches up from a partition snapshot', () => {
  it('pulls the state, then only the records it lacks in bounded chunks, syncs the received snapshot, and only then gives the core the snapshot', async () => {
    const leader = partition(1_200)
    const h = new Harness(leader, prefixOf(leader.entries, 300))
    h.sender.offer(FOLLOWER)
    await h.pump()
    // the prefix it holds stays: records from its nextOffset (300) on, 500 batches a chunk
    expect([...h.records.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: 900 }, (_, k) => 300 + k))
    for (const [offset, bytes] of h.records) expect(bytes).toEqual(leader.stored.get(offset))
    expect(h.asks('state')).toBe(1)
    expect(h.asks('records')).toBe(2)
    expect(h.events).toEqual(['pending 1200 staged', 'store synced', 'core given 1200'])
    const install = h.installs[0]!
    expect(install).toMatchObject({ from: LEADER, to: FOLLOWER, term: TERM, snapshot: { metadata: { index: 1_200, term: TERM, conf: { voters: [1, 2, 3] } } } })
    expect(install.snapshot!.data.length).toBe(0)
    expect(h.receiver.progress()).not.toBeNull() // until the core installs it
    // the core's restore hook takes the state machine the snapshot carries
    const got = h.receiver.takeInstalled(1_200)
    expect(got?.sm.nextOffset).toBe(1_200)
    expect(got?.sm.appliedIndex).toBe(1_200)
    expect(h.receiver.progress()).toBeNull()
    await h.pump()
    expect(h.ends(FOLLOWER)).toEqual([{ kind: 'end', id: 1, done: true, reason: 'installed' }])
    expect(h.sender.active).toBe(0)
    expect(h.reports).toEqual([]) // the core learns of success from the follower's own answer
    expect(h.logs.find((l) => l.msg.startsWith('caught up by snapshot'))?.obj).toMatchObject({ index: 1_200, batches: 900, fetchedFrom: 300 })
    expect(h.logs.find((l) => l.msg.startsWith('snapshot transfer to a follower finished'))?.obj).toMatchObject({ batches: 900 })
  })

  it('takes everything retained when its own records end below the log start, and reports its progress in bytes', async () => {
    const leader = partition(400)
    leader.sm.apply(401, encodeCleanup(150))
    const h = new Harness(leader, prefixOf(leader.entries, 20))
    h.sender.offer(FOLLOWER)
    let seen: { bytes: number; total: number } | null = null
    h.drop = (_m, item) => {
      if (item.kind === 'records') seen ??= h.receiver.progress()
      return false
    }
    await h.pump()
    expect(Math.min(...h.records.keys())).toBe(150)
    expect(h.records.size).toBe(250)
    expect(seen!.bytes).toBeGreaterThan(0)
    expect(seen!.bytes).toBeLessThan(seen!.total)
    expect(h.receiver.takeInstalled(401)?.sm.logStartOffset).toBe(150)
  })

  it('sends the state machine in chunks of at most chunkBytesMax', async () => {
    // 24 bytes a batch in the state: this many make it larger than one chunk
    const leader = partition(Math.ceil(limits.snapshot.chunkBytesMax / 24) + 100)
    const n = leader.sm.appliedIndex
    const h = new Harness(leader, prefixOf(leader.entries, n - 10))
    h.sender.offer(FOLLOWER)
    await h.pump()
    const states = h.sent.filter((s) => s.item.kind === 'state').map((s) => (s.item as Extract<TransferItem, { kind: 'state' }>).bytes.length)
    expect(states.length).toBe(2)
    expect(Math.max(...states)).toBeLessThanOrEqual(limits.snapshot.chunkBytesMax)
    expect(h.records.size).toBe(10)
    expect(h.receiver.takeInstalled(n)?.sm.nextOffset).toBe(n)
  })

  it('asks again for an answer that was lost, and a repeated answer changes nothing', async () => {
    const leader = partition(1_200)
    const h = new Harness(leader, prefixOf(leader.entries, 100))
    let lost = 0
    let repeated = false
    h.drop = (m, item) => {
      if (item.kind === 'records' && lost === 0) return ++lost > 0
      if (item.kind === 'records' && !repeated) {
        repeated = true
        h.queue.unshift(m) // delivered twice
      }
      return false
    }
    h.sender.offer(FOLLOWER)
    await h.pump()
    expect(h.installs).toEqual([])
    h.now += TIMING.requestRetryMs
    h.receiver.tick()
    await h.pump()
    expect(h.installs.length).toBe(1)
    expect(h.records.size).toBe(1_100)
    expect(h.asks('records')).toBe(4) // 3 chunks, one asked twice
  })

  it('the same offer again (the core resends it) does not restart the transfer; a follower that lost it starts it', async () => {
    const leader = partition(50)
    const h = new Harness(leader, prefixOf(leader.entries, 10))
    h.drop = (_m, item) => item.kind === 'offer' && h.sent.filter((s) => s.item.kind === 'offer').length === 1
    h.sender.offer(FOLLOWER)
    await h.pump()
    expect(h.asks('state')).toBe(0)
    h.sender.offer(FOLLOWER)
    h.sender.offer(FOLLOWER)
    await h.pump()
    expect(h.asks('state')).toBe(1)
    expect(h.installs.length).toBe(1)
    expect(h.sent.filter((s) => s.item.kind === 'offer').map((s) => s.item.id)).toEqual([1, 1, 1])
  })

  it('a leader change aborts it: the follower tells the old leader, whose core learns the snapshot failed', async () => {
    const leader = partition(1_200)
    const h = new Harness(leader, prefixOf(leader.entries, 100))
    h.drop = (_m, item) => item.kind === 'records'
    h.sender.offer(FOLLOWER)
    await h.pump()
    h.followerRaft.leader = 3
    h.followerRaft.term = TERM + 1
    h.receiver.tick()
    expect(h.receiver.progress()).toBeNull()
    await h.pump()
    expect(h.ends(FOLLOWER)[0]).toMatchObject({ done: false })
    expect(h.sender.active).toBe(0)
    expect(h.reports).toEqual([[FOLLOWER, false]])
    expect(h.installs).toEqual([])
    expect(h.pending).toBeNull()
    expect(h.logs.some((l) => l.msg.startsWith('catching up by snapshot: transfer aborted') && String(l.obj.reason).includes('leader changed'))).toBe(true)
  })

  it('a leader that stops leading drops its offers; asks for them are answered with an end', async () => {
    const leader = partition(1_200)
    const h = new Harness(leader, prefixOf(leader.entries, 100))
    h.drop = (_m, item) => item.kind === 'records'
    h.sender.offer(FOLLOWER)
    await h.pump()
    h.leading = false
    h.sender.tick()
    expect(h.sender.active).toBe(0)
    h.drop = () => false
    h.now += TIMING.requestRetryMs
    h.receiver.tick()
    await h.pump()
    expect(h.receiver.progress()).toBeNull()
    expect(h.ends(LEADER)).toMatchObject([{ done: false, reason: 'no such transfer here' }])
    expect(h.installs).toEqual([])
  })

  it('retention dropping the range being streamed ends the transfer on both sides', async () => {
    const leader = partition(1_200)
    const h = new Harness(leader, prefixOf(leader.entries, 100))
    h.goneBelow = 700
    h.sender.offer(FOLLOWER)
    await h.pump()
    expect(h.ends(LEADER)[0]).toMatchObject({ done: false })
    expect((h.ends(LEADER)[0] as Extract<TransferItem, { kind: 'end' }>).reason).toContain('RANGE_GONE')
    expect(h.reports).toEqual([[FOLLOWER, false]])
    expect(h.receiver.progress()).toBeNull()
    expect(h.installs).toEqual([])
  })

  it('a batch that fails its checks ends the transfer before anything reaches the core', async () => {
    const leader = partition(1_200)
    const h = new Harness(leader, prefixOf(leader.entries, 100))
    leader.stored.get(800)![40]! ^= 0xff
    h.sender.offer(FOLLOWER)
    await h.pump()
    expect(h.installs).toEqual([])
    expect(h.pending).toBeNull()
    expect(h.records.has(800)).toBe(false)
    expect(h.reports).toEqual([[FOLLOWER, false]])
    expect(h.logs.some((l) => l.level === 'error' && l.msg.includes('failed its checks'))).toBe(true)
  })

  it('either side gives up on a transfer that stalls for idleTimeoutMs', async () => {
    const leader = partition(1_200)
    const h = new Harness(leader, prefixOf(leader.entries, 100))
    h.drop = (m) => m.to === LEADER // nothing the follower says arrives
    h.sender.offer(FOLLOWER)
    await h.pump()
    for (let t = 0; t <= TIMING.idleTimeoutMs; t += TIMING.requestRetryMs) {
      h.now += TIMING.requestRetryMs
      h.sender.tick()
      h.receiver.tick()
      await h.pump()
    }
    expect(h.sender.active).toBe(0)
    expect(h.reports).toEqual([[FOLLOWER, false]])
    expect(h.receiver.progress()).toBeNull()
  })

  it('a follower that holds the index already answers through its core; one whose core declines drops the received copy', async () => {
    const leader = partition(30)
    const h = new Harness(leader, prefixOf(leader.entries, 30))
    h.sender.offer(FOLLOWER)
    await h.pump()
    expect(h.asks('state')).toBe(0)
    expect(h.installs.length).toBe(1) // the core answers the leader with what it has

    const h2 = new Harness(partition(30), prefixOf(leader.entries, 5))
    h2.installTakes = false
    h2.sender.offer(FOLLOWER)
    await h2.pump()
    expect(h2.events).toEqual(['pending 30 staged', 'store synced', 'core given 30', 'pending dropped'])
    expect(h2.receiver.progress()).toBeNull()
    expect(h2.ends(FOLLOWER)).toMatchObject([{ done: true, reason: 'not needed' }])
  })

  it('after a failed transfer the next offer to that follower waits, longer after each failure, and not after a success', async () => {
    const leader = partition(1_200)
    const h = new Harness(leader, prefixOf(leader.entries, 100))
    h.goneBelow = 10_000 // every records chunk fails
    const offers = () => h.sent.filter((s) => s.item.kind === 'offer').length
    h.sender.offer(FOLLOWER)
    await h.pump()
    expect(h.reports).toEqual([[FOLLOWER, false]])
    // within the wait: the core is told at once, nothing is offered
    h.sender.offer(FOLLOWER)
    await h.pump()
    expect(offers()).toBe(1)
    expect(h.reports.length).toBe(2)
    h.now += TIMING.requestRetryMs / 2
    h.sender.offer(FOLLOWER)
    await h.pump()
    expect(offers()).toBe(2) // failed again: the wait doubles
    h.now += TIMING.requestRetryMs / 2
    h.sender.offer(FOLLOWER)
    await h.pump()
    expect(offers()).toBe(2)
    h.now += TIMING.requestRetryMs / 2
    h.goneBelow = -1
    h.sender.offer(FOLLOWER)
    await h.pump()
    expect(offers()).toBe(3)
    expect(h.installs.length).toBe(1)
  })

  it(`a thread sends at most ${limits.snapshot.sendsPerThreadMax} at once: past it the core is told to try again later`, async () => {
    const leader = partition(10)
    const h = new Harness(leader, prefixOf(leader.entries, 1))
    for (let to = 10; to < 10 + limits.snapshot.sendsPerThreadMax + 2; to++) h.sender.offer(to)
    expect(h.sender.active).toBe(limits.snapshot.sendsPerThreadMax)
    expect(h.reports).toEqual([[10 + limits.snapshot.sendsPerThreadMax, false], [11 + limits.snapshot.sendsPerThreadMax, false]])
    h.sender.close()
    expect(h.sender.active).toBe(0)
  })
})
