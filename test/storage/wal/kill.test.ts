import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { NodeWalFs, Wal } from '../../../src/storage/wal/index.js'
import { recordFor } from './fixtures/records.js'
import { plain } from './helpers.js'
import type { Seen } from './helpers.js'

const root = join(import.meta.dirname, '..', '..', '..')
const SEGMENT_BYTES = 256 << 10
const temps: string[] = []

/** One acknowledged commit: records first..last, in segment seq. */
interface Commit {
  readonly first: number
  readonly last: number
  readonly seq: number
}
afterEach(async () => {
  for (const d of temps.splice(0)) await rm(d, { recursive: true, force: true })
})

/** Runs the writer until it has acknowledged at least `acks` commits, then kills it with SIGKILL. */
function runAndKill(dir: string, seed: number, acks: number): Promise<{ readonly commits: readonly Commit[]; readonly retiring: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'test/storage/wal/fixtures/wal-writer.ts'), dir, String(SEGMENT_BYTES), String(seed)], { cwd: root })
    let out = ''
    let err = ''
    let count = 0
    let retiring = 0
    const commits: Commit[] = []
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8')
      const lines = out.split('\n')
      out = lines.pop()!
      for (const line of lines) {
        const [what, a, b] = line.split(' ')
        if (what === 'recovered') commits.push({ first: 1, last: Number(b), seq: 0 })
        else if (what === 'acked') {
          commits.push({ first: commits[commits.length - 1]!.last + 1, last: Number(a), seq: Number(b) })
          if (++count === acks) child.kill('SIGKILL')
        } else if (what === 'retiring') retiring = Number(a)
      }
    })
    child.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')))
    child.once('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve({ commits: commits.slice(1), retiring })
      else reject(new Error(`writer exited ${code}: ${err}`))
    })
  })
}

describe('wal - kill -9', () => {
  it('every acknowledged record of a live segment survives SIGKILL, at any point of a roll, a preparation or a retire', async () => {
    const base = await mkdtemp(join(tmpdir(), 'raftmq-wal-kill-'))
    temps.push(base)
    const dir = join(base, 'w0')
    for (let round = 1; round <= 4; round++) {
      const run = await runAndKill(dir, round, 150 + round * 97)
      const seen: Seen[] = []
      const opened = Wal.open({ fs: new NodeWalFs(), dir, segmentBytes: SEGMENT_BYTES }, (rec, seq) => seen.push(plain(rec, seq)))
      if (!opened.ok) throw new Error(`${opened.error.code}: ${opened.error.message}`)
      opened.value.wal.close()
      await opened.value.wal.settled()
      // Each record is the one its index says, in order, and none is missing after the first.
      for (const s of seen) expect(s).toEqual(plain(recordFor(s.index), s.seq))
      const first = seen[0]!.index
      expect(seen.map((s) => s.index)).toEqual(Array.from({ length: seen.length }, (_, k) => first + k))
      const acked = run.commits[run.commits.length - 1]!
      expect(seen[seen.length - 1]!.index).toBeGreaterThanOrEqual(acked.last)
      // Whatever was acknowledged in a segment that was not (being) retired is there, in its segment.
      const kept = run.commits.filter((c) => c.seq > run.retiring)
      expect(first).toBeLessThanOrEqual(kept[0]!.first)
      const seqOf = new Map(seen.map((s) => [s.index, s.seq]))
      for (const c of kept) expect(seqOf.get(c.last)).toBe(c.seq)
    }
  })
})
