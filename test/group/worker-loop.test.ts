import { describe, expect, it } from 'vitest'
import { Prng } from '../../src/base/index.js'
import { GroupActor, WorkerLoop } from '../../src/group/index.js'
import type { LoopEngine } from '../../src/group/index.js'
import { MemoryStorage } from '../../src/raft/index.js'
import type { Entry, Message, Ready, Snapshot } from '../../src/raft/index.js'

const silent = { info() {}, warn() {}, error() {}, debug() {} }
const enc = new TextEncoder()
const dec = new TextDecoder()

/** An in-memory engine over one MemoryStorage per group, counting syncs; it can refuse like a full or broken disk. */
class MemoryEngine implements LoopEngine {
  readonly logs = new Map<number, MemoryStorage>()
  syncs = 0
  /** Readys per synced commit. */
  readysPerSync: number[] = []
  mode: 'ok' | 'full' | 'failed' = 'ok'
  #staged: Array<[number, Ready]> = []
  stage(group: number, rd: Ready): void {
    this.#staged.push([group, rd])
  }
  commit(): { ok: true } | { ok: false; error: { code: 'FULL' | 'FAILED'; message: string } } {
    if (this.mode === 'full') return { ok: false, error: { code: 'FULL', message: 'no space left on device' } }
    if (this.mode === 'failed') return { ok: false, error: { code: 'FAILED', message: 'EIO' } }
    if (this.#staged.some(([, rd]) => rd.mustSync)) {
      this.syncs++
      this.readysPerSync.push(this.#staged.length)
    }
    for (const [g, rd] of this.#staged) this.logs.get(g)!.persist(rd)
    this.#staged = []
    return { ok: true }
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

interface Timers {
  readonly fire: () => void
  readonly pending: number
}

function world(groups: number): { loop: WorkerLoop; engine: MemoryEngine; actors: GroupActor<number>[]; sms: Counter[]; timers: Timers } {
  const engine = new MemoryEngine()
  let waiting: Array<() => void> = []
  const timers = {
    fire: () => {
      const w = waiting
      waiting = []
      for (const f of w) f()
    },
    get pending() {
      return waiting.length
    },
  }
  const loop = new WorkerLoop(engine, { log: silent, after: (_ms, fn) => waiting.push(fn) })
  const actors: GroupActor<number>[] = []
  const sms: Counter[] = []
  for (let g = 1; g <= groups; g++) {
    const view = new MemoryStorage([1])
    engine.logs.set(g, view)
    const sm = new Counter()
    const actor = new GroupActor<number>(loop, { groupId: g, nodeId: 1, storage: view, stateMachine: sm, prng: new Prng(g), applied: 0, log: silent })
    loop.add(actor)
    actor.campaign()
    actors.push(actor)
    sms.push(sm)
  }
  return { loop, engine, actors, sms, timers }
}

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (cond()) return
    await new Promise((r) => setTimeout(r, 2))
  }
  throw new Error(`timed out waiting for ${what}`)
}

describe('worker loop - one Ready loop over many groups', () => {
  it('commits a batch proposal and hands back one result per entry', async () => {
    const { actors, sms } = world(1)
    await until(() => actors[0]!.isLeader(), 'leadership')
    const r = await actors[0]!.propose(['a', 'b', 'c'].map((s) => enc.encode(s)))
    expect(r.ok && r.value.results).toEqual([0, 1, 2])
    expect(sms[0]!.applied).toEqual(['a', 'b', 'c'])
  })

  it('a lone proposal costs one sync: its commit and apply need none of their own', async () => {
    const { actors, engine } = world(1)
    await until(() => actors[0]!.isLeader(), 'leadership')
    await actors[0]!.propose([enc.encode('warm')])
    const before = engine.syncs
    for (let i = 0; i < 5; i++) expect((await actors[0]!.propose([enc.encode(`m${i}`)])).ok).toBe(true)
    expect(engine.syncs - before).toBe(5)
  })

  it('group commit across groups: proposals of eight groups in one turn share one sync', async () => {
    const { actors, engine } = world(8)
    await until(() => actors.every((a) => a.isLeader()), 'leadership')
    await Promise.all(actors.map((a) => a.propose([enc.encode('warm')])))
    const before = engine.syncs
    const rs = await Promise.all(actors.map((a, k) => a.propose([enc.encode(`g${k}`)])))
    expect(rs.every((r) => r.ok)).toBe(true)
    expect(engine.syncs - before).toBe(1)
    expect(engine.readysPerSync[engine.readysPerSync.length - 1]).toBe(8)
  })

  it('a full disk refuses new proposals with STORAGE_FULL, keeps the stalled ones, and resumes by itself', async () => {
    const { actors, engine, sms, timers, loop } = world(1)
    const a = actors[0]!
    await until(() => a.isLeader(), 'leadership')
    engine.mode = 'full'
    const stalled = a.propose([enc.encode('during')])
    await until(() => loop.blocked !== null, 'the refusal')
    const refused = await a.propose([enc.encode('refused')])
    expect(refused.ok).toBe(false)
    if (!refused.ok) expect(refused.error.code).toBe('STORAGE_FULL')
    timers.fire() // still full: tried again and stays blocked
    expect(loop.blocked?.code).toBe('STORAGE_FULL')
    expect(timers.pending).toBe(1)
    engine.mode = 'ok'
    timers.fire()
    const r = await stalled
    expect(r.ok).toBe(true)
    expect(loop.blocked).toBeNull()
    expect((await a.propose([enc.encode('after')])).ok).toBe(true)
    expect(sms[0]!.applied).toEqual(['during', 'after'])
  })

  it('a failed write stops every group of the worker and fails what was pending (fail-stop)', async () => {
    const { actors, engine } = world(2)
    await until(() => actors.every((a) => a.isLeader()), 'leadership')
    engine.mode = 'failed'
    const rs = await Promise.all(actors.map((a) => a.propose([enc.encode('x')])))
    for (const r of rs) {
      expect(r.ok).toBe(false)
      if (!r.ok) expect(r.error.code).toBe('STORAGE_FAILED')
    }
    engine.mode = 'ok'
    const later = await actors[1]!.propose([enc.encode('y')])
    expect(later.ok).toBe(false)
    if (!later.ok) expect(later.error.code).toBe('STORAGE_FAILED')
  })

  it('a stopped group fails its pending proposals and takes no more work', async () => {
    const { actors, loop } = world(1)
    const a = actors[0]!
    await until(() => a.isLeader(), 'leadership')
    const p = a.propose([enc.encode('x')])
    loop.remove(a)
    const r = await p
    expect(r.ok).toBe(false)
    if (!r.ok) expect(r.error.code).toBe('STOPPED')
  })
})

/** Three voters, each a GroupActor in its own WorkerLoop, their turns and messages pumped by hand (node 3 can be cut off). */
function cluster() {
  const turns: Array<() => void> = []
  const wire: Message[] = []
  const cut = new Set<number>()
  const voters = [1, 2, 3]
  const nodes = voters.map((id) => {
    const engine = new MemoryEngine()
    const view = new MemoryStorage(voters)
    engine.logs.set(1, view)
    const loop = new WorkerLoop(engine, { log: silent, schedule: (fn) => turns.push(fn), after: () => {} })
    const sm = { applied: [] as string[], restored: [] as number[] }
    const actor = new GroupActor<null>(loop, {
      groupId: 1,
      nodeId: id,
      storage: view,
      stateMachine: {
        apply: (e: Entry) => {
          if (e.data.byteLength > 0) sm.applied.push(dec.decode(e.data))
          return null
        },
        restore: (snap: Snapshot) => {
          sm.restored.push(snap.metadata.index)
          sm.applied = dec.decode(snap.data).split(',')
        },
      },
      prng: new Prng(id),
      applied: 0,
      log: silent,
      sendToPeers: (msgs) => wire.push(...msgs),
    })
    loop.add(actor)
    return { id, view, actor, sm }
  })
  /** Runs turns and delivers messages until nothing moves. */
  const pump = async (): Promise<void> => {
    for (let i = 0; i < 10_000 && (turns.length > 0 || wire.length > 0); i++) {
      for (const t of turns.splice(0)) t()
      for (const m of wire.splice(0)) if (!cut.has(m.to) && !cut.has(m.from)) nodes[m.to - 1]!.actor.step(m)
      await null
    }
  }
  return { nodes, cut, pump }
}

describe('group actor - peers', () => {
  it("sends a Ready's messages through sendToPeers, and a follower that fell behind restores the leader's snapshot", async () => {
    const { nodes, cut, pump } = cluster()
    const [n1, , n3] = nodes
    n1!.actor.campaign()
    await pump()
    expect(n1!.actor.isLeader()).toBe(true)
    cut.add(3)
    const a = n1!.actor.propose(['a', 'b'].map((x) => enc.encode(x)))
    await pump()
    expect((await a).ok).toBe(true)
    // the leader snapshots its state and drops the log behind it: node 3 can only catch up from the snapshot
    const at = n1!.actor.appliedIndex
    n1!.view.createSnapshot(at, n1!.actor.node.confAt(at), enc.encode(n1!.sm.applied.join(',')))
    n1!.view.compact(at)
    cut.delete(3)
    const c = n1!.actor.propose([enc.encode('c')])
    for (let i = 0; i < 20 && n3!.sm.restored.length === 0; i++) {
      n1!.actor.tick()
      await pump()
    }
    expect((await c).ok).toBe(true)
    await pump()
    expect(n3!.sm.restored).toEqual([at])
    expect(n3!.actor.appliedIndex).toBe(n1!.actor.appliedIndex)
    expect(n3!.sm.applied).toEqual(['a', 'b', 'c'])
  })
})

describe('group actor - a leader that stops leading', () => {
  it('cut off, its pending proposals fail as dropped (outcome unknown) two election timeouts after it stepped down, not at the client timeout', async () => {
    const { nodes, cut, pump } = cluster()
    const [n1] = nodes
    n1!.actor.campaign()
    await pump()
    cut.add(1)
    let settled: { ok: boolean; code?: string } | null = null
    void n1!.actor.propose([enc.encode('lost?')]).then((r) => (settled = r.ok ? { ok: true } : { ok: false, code: r.error.code }))
    let ticks = 0
    for (; ticks < 100 && settled === null; ticks++) {
      n1!.actor.tick()
      await pump()
    }
    expect(settled).toEqual({ ok: false, code: 'PROPOSAL_DROPPED' })
    // check-quorum steps it down within two election timeouts (10 ticks each: the first check may
    // still count the answers it had before the cut), then two more
    expect(ticks).toBeGreaterThanOrEqual(30)
    expect(ticks).toBeLessThanOrEqual(41)
  })

  it('handing leadership over, its pending proposals still resolve with their results once the new leader commits them', async () => {
    const { nodes, pump } = cluster()
    const [n1, n2] = nodes
    n1!.actor.campaign()
    await pump()
    const p = n1!.actor.propose([enc.encode('kept')])
    n1!.actor.transferLeader(2)
    await pump()
    for (let i = 0; i < 5; i++) {
      n2!.actor.tick()
      await pump()
    }
    expect(n2!.actor.isLeader()).toBe(true)
    const r = await p
    expect(r.ok).toBe(true)
    expect(n2!.sm.applied).toEqual(['kept'])
  })
})
