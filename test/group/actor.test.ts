import { describe, expect, it } from 'vitest'
import { Prng } from '../../src/base/index.js'
import { GroupActor } from '../../src/group/index.js'
import type { ActorStorage } from '../../src/group/index.js'
import { MemoryStorage } from '../../src/raft/index.js'
import type { Entry, Message, Ready } from '../../src/raft/index.js'

const silent = { info() {}, warn() {}, error() {}, debug() {} }
const enc = new TextEncoder()
const dec = new TextDecoder()

/** MemoryStorage behind an asynchronous persist that counts syncs and can be held back. */
class SlowStorage implements ActorStorage {
  readonly raft: MemoryStorage
  syncs = 0
  entriesPerSync: number[] = []
  fail = false
  constructor(voters: number[]) {
    this.raft = new MemoryStorage(voters)
  }
  async persist(rd: Ready): Promise<void> {
    await new Promise((r) => setTimeout(r, 2))
    if (this.fail) throw new Error('disk on fire')
    this.raft.persist(rd)
    this.syncs++
    this.entriesPerSync.push(rd.entries.length)
  }
}

/** A state machine that numbers the non-empty entries it applies. */
class Counter {
  applied: string[] = []
  apply(e: Entry): number {
    if (e.data.byteLength === 0) return -1
    this.applied.push(dec.decode(e.data))
    return this.applied.length - 1
  }
}

function single(storage = new SlowStorage([1])): { actor: GroupActor<number>; sm: Counter; storage: SlowStorage } {
  const sm = new Counter()
  const actor = new GroupActor<number>({ groupId: 7, nodeId: 1, storage, stateMachine: sm, prng: new Prng(1), applied: 0, log: silent })
  return { actor, sm, storage }
}

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (cond()) return
    await new Promise((r) => setTimeout(r, 2))
  }
  throw new Error(`timed out waiting for ${what}`)
}

describe('group actor - single voter', () => {
  it('commits a batch proposal and hands back one result per entry', async () => {
    const { actor, sm } = single()
    actor.campaign()
    await until(() => actor.isLeader(), 'leadership')
    const r = await actor.propose(['a', 'b', 'c'].map((s) => enc.encode(s)))
    expect(r.ok).toBe(true)
    if (r.ok) expect(r.value.results).toEqual([0, 1, 2])
    expect(sm.applied).toEqual(['a', 'b', 'c'])
  })

  it('group commit: proposals made during a sync share the next one', async () => {
    const { actor, storage } = single()
    actor.campaign()
    await until(() => actor.isLeader(), 'leadership')
    const syncs0 = storage.syncs
    const all = await Promise.all(Array.from({ length: 50 }, (_, i) => actor.propose([enc.encode(`m${i}`)])))
    expect(all.every((r) => r.ok)).toBe(true)
    // 50 proposals, far fewer syncs: everything that arrived during one write went into the next
    expect(storage.syncs - syncs0).toBeLessThanOrEqual(3)
    expect(Math.max(...storage.entriesPerSync)).toBeGreaterThanOrEqual(49)
  })

  it('refuses proposals when not the leader, and after a storage failure', async () => {
    const { actor, storage } = single()
    const r0 = await actor.propose([enc.encode('x')])
    expect(r0.ok ? null : r0.error.code).toBe('NOT_LEADER')
    actor.campaign()
    await until(() => actor.isLeader(), 'leadership')
    storage.fail = true
    const r1 = await actor.propose([enc.encode('y')])
    expect(r1.ok ? null : r1.error.code).toBe('STORAGE_FAILED')
    const r2 = await actor.propose([enc.encode('z')])
    expect(r2.ok ? null : r2.error.code).toBe('STORAGE_FAILED')
  })

  it('stop() fails what is pending and refuses new work', async () => {
    const { actor } = single()
    actor.campaign()
    await until(() => actor.isLeader(), 'leadership')
    const p = actor.propose([enc.encode('late')])
    await actor.stop()
    const r = await p
    // either it made it before the stop or it was failed, never left hanging
    expect(r.ok || r.error.code === 'STOPPED').toBe(true)
    const r2 = await actor.propose([enc.encode('after')])
    expect(r2.ok ? null : r2.error.code).toBe('STOPPED')
  })
})

describe('group actor - three voters', () => {
  it('replicates through sendToPeers and commits on a majority', async () => {
    const actors = new Map<number, GroupActor<number>>()
    const sms = new Map<number, Counter>()
    for (const id of [1, 2, 3]) {
      const sm = new Counter()
      sms.set(id, sm)
      actors.set(
        id,
        new GroupActor<number>({
          groupId: 1,
          nodeId: id,
          storage: new SlowStorage([1, 2, 3]),
          stateMachine: sm,
          prng: new Prng(id),
          applied: 0,
          log: silent,
          sendToPeers: (msgs: readonly Message[]) => {
            for (const m of msgs) setImmediate(() => actors.get(m.to)?.step(m))
          },
        }),
      )
    }
    actors.get(1)!.campaign()
    await until(() => actors.get(1)!.isLeader(), 'leadership')
    const r = await actors.get(1)!.propose([enc.encode('x'), enc.encode('y')])
    expect(r.ok).toBe(true)
    // followers learn the commit with the next append or heartbeat
    const tick = setInterval(() => actors.get(1)!.tick(), 5)
    await until(() => sms.get(2)!.applied.length === 2 && sms.get(3)!.applied.length === 2, 'followers to apply')
    clearInterval(tick)
    expect(sms.get(2)!.applied).toEqual(['x', 'y'])
  })
})
