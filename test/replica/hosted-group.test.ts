import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { Prng, ok } from '../../src/base/index.js'
import { GroupRuntime, HostedGroup } from '../../src/replica/index.js'
import { MemoryWalFs, recoverWals, removeGenerations } from '../../src/storage/index.js'
import { tempDir } from '../storage/helpers.js'

const silent = { info() {}, warn() {}, error() {}, debug() {} }
const enc = new TextEncoder()
const dec = new TextDecoder()

let tmp: { dir: string; remove: () => Promise<void> }
beforeEach(async () => {
  tmp = await tempDir()
})
afterEach(async () => {
  await tmp.remove()
})

/** A state machine that keeps every applied entry's text: its snapshot is the whole list. */
class Texts {
  applied = 0
  texts: string[] = []
  apply(index: number, data: Uint8Array): number {
    this.applied = index
    if (data.length > 0) this.texts.push(dec.decode(data))
    return this.texts.length
  }
  snapshot(): Uint8Array {
    return enc.encode(JSON.stringify({ applied: this.applied, texts: this.texts }))
  }
  restore(blob: Uint8Array | null): number {
    if (blob === null) return 0
    const s = JSON.parse(dec.decode(blob)) as { applied: number; texts: string[] }
    this.applied = s.applied
    this.texts = s.texts
    return s.applied
  }
}

/** Waits (bounded) until retirement, which runs in the background, has caught up: a few segments live at most. */
async function retiredDown(wal: { readonly liveBytes: number }): Promise<void> {
  for (let i = 0; i < 200 && wal.liveBytes >= 4 * (16 << 10); i++) await new Promise((r) => setTimeout(r, 10))
  expect(wal.liveBytes).toBeLessThan(4 * (16 << 10))
}

/** One "life" of a node: a runtime over `fs`, recovering what the previous life left. */
async function life(fs: MemoryWalFs, gen: string, groups: readonly number[], segmentBytes: number) {
  const walRoot = '/wal'
  const recovered = await recoverWals({ fs, walRoot, groupDir: (g) => join(tmp.dir, String(g)), log: silent })
  if (!recovered.ok) throw new Error(`${recovered.error.code}: ${recovered.error.message}`)
  const runtime = GroupRuntime.open({ fs, walDir: join(walRoot, recovered.value.nextGeneration, gen), log: silent, segmentBytes })
  if (!runtime.ok) throw new Error(runtime.error.message)
  const hosted: { group: HostedGroup<number>; sm: Texts }[] = []
  for (const id of groups) {
    const sm = new Texts()
    const expect = recovered.value.expect.get(id)
    const g = await HostedGroup.open<number>({
      groupId: id,
      dir: join(tmp.dir, String(id)),
      nodeId: 1,
      voters: [1],
      electionTicks: 10,
      ...(expect === undefined ? {} : { expectApplied: expect }),
      runtime: runtime.value,
      log: silent,
      prng: new Prng(id),
      restore: (blob) => ok(sm.restore(blob)),
      apply: (e) => sm.apply(e.index, e.data),
      snapshot: () => sm.snapshot(),
    })
    if (!g.ok) throw new Error(`${g.error.code}: ${g.error.message}`)
    await g.value.leadAlone(5_000)
    hosted.push({ group: g.value, sm })
  }
  removeGenerations(fs, walRoot, recovered.value.generations)
  return { runtime: runtime.value, hosted }
}

describe('hosted groups over one WAL - retirement and recovery', () => {
  it('segments are retired once every group checkpointed, and a crash then loses no acknowledged entry', async () => {
    const fs = new MemoryWalFs()
    const first = await life(fs, 'w0', [1, 2], 16 << 10)
    const acked: Record<number, string[]> = { 1: [], 2: [] }
    for (let k = 0; k < 300; k++) {
      for (const { group } of first.hosted) {
        const text = `g${group.actor.groupId}-${k}-${'x'.repeat(k % 97)}`
        const r = await group.actor.propose([enc.encode(text)])
        expect(r.ok).toBe(true)
        acked[group.actor.groupId]!.push(text)
      }
    }
    const wal = first.runtime.engine.wal
    // ~60 KB of records went through 16 KB segments: several rolls, and the old ones retired
    expect(wal.activeSeq).toBeGreaterThan(3)
    await retiredDown(wal)

    // the process dies: unsynced WAL bytes are gone; the stores keep what reached LevelDB
    // (a process crash leaves that in the page cache), nothing is checkpointed on the way out
    for (const { group } of first.hosted) {
      first.runtime.loop.remove(group.actor)
      // the dead process's runtime must not start a checkpoint of a store closed here
      first.runtime.unhost(group.actor.groupId, { removed: false })
      await group.store.close()
    }
    const second = await life(fs.crash(), 'w0', [1, 2], 16 << 10)
    for (const { group, sm } of second.hosted) expect(sm.texts).toEqual(acked[group.actor.groupId])
    // and it goes on from there
    const r = await second.hosted[0]!.group.actor.propose([enc.encode('after')])
    expect(r.ok).toBe(true)
    for (const h of second.hosted) await h.group.close({ removed: false })
    await second.runtime.close()
  })

  it('a clean stop checkpoints every group: the next start replays nothing into the stores', async () => {
    const fs = new MemoryWalFs()
    const first = await life(fs, 'w0', [1], 1 << 20)
    for (let k = 0; k < 20; k++) expect((await first.hosted[0]!.group.actor.propose([enc.encode(`m${k}`)])).ok).toBe(true)
    for (const h of first.hosted) await h.group.close({ removed: false })
    await first.runtime.close()
    const recovered = await recoverWals({ fs, walRoot: '/wal', groupDir: (g) => join(tmp.dir, String(g)), log: silent })
    expect(recovered.ok && recovered.value.groups).toBe(0)
    const second = await life(fs, 'w0', [1], 1 << 20)
    expect(second.hosted[0]!.sm.texts).toHaveLength(20)
    for (const h of second.hosted) await h.group.close({ removed: false })
    await second.runtime.close()
  })

  it('an idle group is not checkpointed when segments retire: its checkpoint record moves forward, and recovery still holds its store to it', async () => {
    const fs = new MemoryWalFs()
    const first = await life(fs, 'w0', [1, 2], 16 << 10)
    const [busy, idle] = first.hosted
    for (let k = 0; k < 10; k++) expect((await idle!.group.actor.propose([enc.encode(`idle-${k}`)])).ok).toBe(true)
    await first.runtime.checkpointNow(2)
    let idleCheckpoints = 0
    const original = idle!.group.checkpoint.bind(idle!.group)
    idle!.group.checkpoint = () => (idleCheckpoints++, original())
    for (let k = 0; k < 800; k++) expect((await busy!.group.actor.propose([enc.encode(`busy-${k}-${'y'.repeat(k % 89)}`)])).ok).toBe(true)
    await new Promise((r) => setTimeout(r, 50))
    const wal = first.runtime.engine.wal
    expect(wal.activeSeq).toBeGreaterThan(3)
    await retiredDown(wal)
    expect(idleCheckpoints).toBe(0)
    for (const { group } of first.hosted) {
      first.runtime.loop.remove(group.actor)
      // the dead process's runtime must not start a checkpoint of a store closed here
      first.runtime.unhost(group.actor.groupId, { removed: false })
      await group.store.close()
    }
    const recovered = await recoverWals({ fs: fs.crash(), walRoot: '/wal', groupDir: (g) => join(tmp.dir, String(g)), log: silent })
    expect(recovered.ok).toBe(true)
    if (recovered.ok) expect(recovered.value.expect.get(2)).toBeGreaterThanOrEqual(10)
  })
})
