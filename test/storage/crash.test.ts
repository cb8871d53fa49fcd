import { Buffer } from 'node:buffer'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { Prng } from '../../src/base/index.js'
import { EntryType } from '../../src/raft/index.js'
import { crashBlob, crashData, openStore, spawnFixture, tempDir } from './helpers.js'

/** Override to replay: STORAGE_CRASH_SEED=<n> npx vitest run test/storage/crash.test.ts */
const BASE_SEED = Number(process.env.STORAGE_CRASH_SEED ?? 20_261_126)
const ROUNDS = 8

interface Model {
  /** terms[i]: the term of entry i (entries at or below the floor may linger; they are not checked). */
  readonly terms: number[]
  hard: { term: number; vote: number; commit: number }
  floor: number
  applied: number
}

type Pending =
  | { readonly kind: 'write'; readonly from: number; readonly last: number; readonly term: number; readonly commit: number }
  | { readonly kind: 'save'; readonly index: number }
  | { readonly kind: 'compact'; readonly through: number }

function clone(m: Model): Model {
  return { terms: m.terms.slice(), hard: { ...m.hard }, floor: m.floor, applied: m.applied }
}

function land(m: Model, p: Pending): void {
  if (p.kind === 'write') {
    m.terms.length = p.from
    for (let i = p.from; i <= p.last; i++) m.terms.push(p.term)
    m.hard = { term: p.term, vote: 1, commit: p.commit }
  } else if (p.kind === 'save') {
    m.applied = p.index
  } else {
    m.floor = p.through
  }
}

/** Replays the writer's announcements: the acknowledged model, and the one step that was in flight. */
function replay(start: Model, out: string): { acked: Model; pending: Pending | null; steps: number } {
  const m = clone(start)
  let pending: Pending | null = null
  let steps = 0
  for (const line of out.split('\n')) {
    const [word, ...nums] = line.trim().split(' ')
    const n = nums.map(Number)
    switch (word) {
      case 'write':
        pending = { kind: 'write', from: n[0]!, last: n[1]!, term: n[2]!, commit: n[3]! }
        break
      case 'save':
        pending = { kind: 'save', index: n[0]! }
        break
      case 'compact':
        pending = { kind: 'compact', through: n[0]! }
        break
      case 'ack':
      case 'saved':
      case 'compacted':
        land(m, pending!)
        pending = null
        steps++
        break
    }
  }
  return { acked: m, pending, steps }
}

let dir: string
let remove: () => Promise<void>

beforeEach(async () => {
  ;({ dir, remove } = await tempDir())
})

afterEach(async () => {
  await remove()
})

describe('storage - crash safety', () => {
  // Jepsen's "lost write": nothing acknowledged may be missing or altered after kill -9,
  // and the write in flight lands whole or not at all (one atomic batch)
  it(`every acknowledged write survives SIGKILL at a random moment, ${ROUNDS} crash/recover cycles on one store (seed ${BASE_SEED})`, async () => {
    const prng = new Prng(BASE_SEED)
    let model: Model = { terms: [0], hard: { term: 0, vote: 0, commit: 0 }, floor: 0, applied: 0 }
    let totalSteps = 0
    let withPending = 0
    for (let round = 0; round < ROUNDS; round++) {
      const seed = BASE_SEED * 100 + round
      const where = `seed ${BASE_SEED} round ${round}`
      const child = spawnFixture('crash-writer.ts', [dir, String(seed)])
      let out = ''
      let err = ''
      child.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')))
      const closed = new Promise<void>((resolve) => child.once('close', () => resolve()))
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (c: Buffer) => {
          out += c.toString('utf8')
          if (out.startsWith('ready\n')) resolve()
        })
        child.once('exit', (code) => reject(new Error(`${where}: writer exited (${code}) before it was ready: ${err}`)))
      })
      await new Promise((r) => setTimeout(r, prng.range(20, 350)))
      child.kill('SIGKILL')
      await closed
      expect(child.signalCode, `${where}: ${err}`).toBe('SIGKILL')

      const { acked, pending, steps } = replay(model, out)
      totalSteps += steps
      const candidates = [acked]
      if (pending) {
        const landed = clone(acked)
        land(landed, pending)
        candidates.push(landed)
        withPending++
      }
      const st = await openStore(dir, { voters: [1], entryCacheBytesMax: 1 << 20 })
      try {
        const got = { hard: st.hardState(), floor: st.firstIndex() - 1, last: st.lastIndex(), applied: st.loadApplied()?.index ?? 0 }
        const match = candidates.find((m) => m.hard.term === got.hard.term && m.hard.commit === got.hard.commit && m.terms.length - 1 === got.last && m.floor === got.floor && m.applied === got.applied)
        const describe = (m: Model) => ({ hard: m.hard, floor: m.floor, last: m.terms.length - 1, applied: m.applied })
        expect(match, `${where}: store ${JSON.stringify(got)} is neither the acknowledged state ${JSON.stringify(describe(acked))} nor that plus the write in flight ${JSON.stringify(pending)}`).toBeDefined()
        const m = match!
        // every retained entry: the term of its run, and its exact bytes
        expect(st.term(m.floor), where).toBe(m.terms[m.floor])
        if (got.last > got.floor) {
          const r = await st.readEntries(got.floor + 1, got.last + 1)
          expect(r.ok, `${where}: ${r.ok ? '' : r.error.message}`).toBe(true)
          const entries = r.ok ? r.value : []
          expect(entries.length).toBe(got.last - got.floor)
          for (const e of entries) {
            const want = m.terms[e.index]!
            if (e.term !== want || e.type !== EntryType.Normal || !Buffer.from(e.data).equals(Buffer.from(crashData(e.index, want)))) {
              expect.fail(`${where}: entry ${e.index} is ${e.term}/${e.type}/${e.data.length}B, want term ${want}`)
            }
            if (st.term(e.index) !== want) expect.fail(`${where}: term(${e.index}) = ${st.term(e.index)}, want ${want}`)
          }
        }
        if (m.applied > 0) expect(Buffer.from(st.loadApplied()!.blob).equals(Buffer.from(crashBlob(m.applied))), where).toBe(true)
        model = m
      } finally {
        await st.close()
      }
    }
    // the run must have exercised something: many steps, and a kill mid-step at least once
    if (process.env.STORAGE_CRASH_VERBOSE) console.log({ totalSteps, withPending, floor: model.floor, last: model.terms.length - 1, applied: model.applied, term: model.hard.term })
    expect(totalSteps).toBeGreaterThan(ROUNDS * 20)
    expect(withPending).toBeGreaterThan(0)
    expect(model.floor).toBeGreaterThan(0)
  }, 30_000)
})
