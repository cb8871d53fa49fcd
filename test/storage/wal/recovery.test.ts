import { Buffer } from 'node:buffer'
import { crc32c } from '@node-rs/crc32'
import { describe, expect, it } from 'vitest'
import { Prng } from '../../../src/base/index.js'
import { MemoryWalFs } from '../../../src/storage/wal/index.js'
import type { WalRecord } from '../../../src/storage/wal/index.js'
import { commitAll, expectRecords, lyingSync, openFails, openWal, poke, rec, segmentPath, truncate, turn } from './helpers.js'

const DATA_START = 512
const SECTOR = 512

/** Where each commit landed: its segment, offset and frame bytes. */
interface Landed {
  readonly seq: number
  readonly start: number
  readonly bytes: number
  readonly records: readonly WalRecord[]
}

/** A WAL with commits made through a sync that can lie; tracks where every commit landed. */
function writer(segmentBytes: number) {
  const fs = new MemoryWalFs()
  const lying = lyingSync(fs)
  const { wal } = openWal(lying.fs, { segmentBytes })
  const landed: Landed[] = []
  const ends = new Map<number, number>()
  return {
    fs,
    wal,
    landed,
    lie: lying.lie,
    commit(records: readonly WalRecord[]): Landed {
      for (const r of records) wal.add(r)
      const c = wal.commit()
      if (!c.ok) throw new Error(c.error.message)
      const start = ends.get(c.value.seq) ?? DATA_START
      ends.set(c.value.seq, start + c.value.bytes)
      const l = { seq: c.value.seq, start, bytes: c.value.bytes, records }
      landed.push(l)
      return l
    },
  }
}

const recordsOf = (landed: readonly Landed[]): WalRecord[] => landed.flatMap((l) => l.records)

interface Scenario {
  readonly fs: MemoryWalFs
  readonly segmentBytes: number
  /** What recovery must return if the last commit is lost: the synced commits of live segments. */
  readonly before: WalRecord[]
  /** The last commit, written but never synced. */
  readonly last: Landed
}

async function scenario(kind: 'in-segment' | 'rolling' | 'recycled'): Promise<Scenario> {
  if (kind === 'in-segment') {
    const w = writer(8192)
    for (let i = 1; i <= 6; i++) w.commit([rec(1, i), rec(2, i, 1, 0), rec(3, i, 1, 150)].slice(0, 1 + (i % 3)))
    w.lie(true)
    const last = w.commit([rec(1, 7, 2, 500), rec(2, 7, 2, 0), rec(3, 7, 2, 700)]) // 3 sectors
    expect(last.seq).toBe(1)
    return { fs: w.fs, segmentBytes: 8192, before: recordsOf(w.landed.slice(0, -1)), last }
  }
  if (kind === 'rolling') {
    const w = writer(2048) // a header and 3 sectors
    await turn()
    for (let i = 1; i <= 3; i++) w.commit([rec(1, i, 1, 100)])
    await turn()
    w.lie(true)
    const last = w.commit([rec(1, 4, 1, 600), rec(2, 1, 1, 30)]) // 2 sectors, the next segment's first commit
    expect(last.seq).toBe(2)
    return { fs: w.fs, segmentBytes: 2048, before: recordsOf(w.landed.slice(0, -1)), last }
  }
  // Commits of one sector each, so a recycled file's stale sectors line up with new ones.
  const w = writer(2048)
  for (let i = 1; i <= 50; i++) {
    w.commit([rec(1, i, 1, 100)])
    await turn()
  }
  const firstLive = w.wal.activeSeq
  expect(w.wal.retire(firstLive - 1).ok).toBe(true)
  // into files recycled from the retired ones (4 are kept)
  for (let i = 51; i <= 54; i++) {
    w.commit([rec(1, i, 1, 100)])
    await turn()
  }
  w.lie(true)
  const last = w.commit([rec(1, 55, 1, 600)]) // 2 sectors
  expect(last.seq).toBeGreaterThan(firstLive)
  const file = w.fs.readAll(segmentPath(last.seq))
  expect(file.length).toBe(2048)
  expect(file.subarray(last.start + last.bytes).some((b) => b !== 0)).toBe(true) // a recycled file: stale bytes follow
  return { fs: w.fs, segmentBytes: 2048, before: recordsOf(w.landed.slice(0, -1).filter((l) => l.seq >= firstLive)), last }
}

describe('wal recovery - torn tail', () => {
  for (const kind of ['in-segment', 'rolling', 'recycled'] as const) {
    it(`${kind}: a crash tearing the last commit anywhere recovers exactly the commits before it (or all, once every sector landed)`, async () => {
      const s = await scenario(kind)
      expect(s.last.bytes).toBeGreaterThanOrEqual(2 * SECTOR)
      for (let k = 0; k <= s.last.bytes; k += 97) {
        const fs = s.fs.crash({ unsynced: 'tear', tearAt: k })
        const landed = Math.floor(k / SECTOR) // sectors of the write that survive
        const complete = k >= s.last.bytes
        const first = openWal(fs, { segmentBytes: s.segmentBytes })
        expectRecords(first.seen, complete ? [...s.before, ...s.last.records] : s.before)
        if (!complete && landed > 0) {
          expect(first.report.tornTails, `tear at ${k}`).toEqual([{ file: segmentPath(s.last.seq), offset: s.last.start, bytes: s.last.bytes }])
        } else {
          expect(first.report.tornTails, `tear at ${k}`).toEqual([])
        }
        // The torn sectors are gone for good, and the next commit goes where they were.
        const extra = rec(9, 1, 3, 17)
        commitAll(first.wal, [extra])
        first.wal.close()
        const second = openWal(fs.crash(), { segmentBytes: s.segmentBytes })
        expect(second.report.tornBytesDropped, `tear at ${k}`).toBe(0)
        expectRecords(second.seen, [...(complete ? [...s.before, ...s.last.records] : s.before), extra])
      }
    })
  }

  it('a crash drops what was written but not synced; a machine that flushed it anyway keeps it', () => {
    const w = writer(4096)
    for (let i = 1; i <= 4; i++) w.commit([rec(1, i), rec(2, i)])
    w.lie(true)
    w.commit([rec(1, 5), rec(2, 5)])
    expectRecords(openWal(w.fs.crash()).seen, recordsOf(w.landed.slice(0, -1)))
    expectRecords(openWal(w.fs.crash({ unsynced: 'keep' })).seen, recordsOf(w.landed))
  })

  it('a disk that reorders the sectors of the unsynced commit never makes recovery refuse or invent data', () => {
    const w = writer(16 << 10)
    for (let i = 1; i <= 4; i++) w.commit([rec(1, i, 1, 300)])
    w.lie(true)
    const last = w.commit(Array.from({ length: 12 }, (_, k) => rec(2 + k, 1, 1, 250)))
    const sectors = last.bytes / SECTOR
    const before = recordsOf(w.landed.slice(0, -1))
    const whole = w.fs.crash({ unsynced: 'keep' }).readAll(segmentPath(1))
    let partialWithLast = 0
    for (let seed = 1; seed <= 200; seed++) {
      const fs = w.fs.crash({ unsynced: 'sectors', prng: new Prng(seed) })
      const bytes = fs.readAll(segmentPath(1))
      const landed = Array.from({ length: sectors }, (_, k) => {
        const at = last.start + k * SECTOR
        return Buffer.compare(bytes.subarray(at, at + SECTOR), whole.subarray(at, at + SECTOR)) === 0
      })
      const { seen, report } = openWal(fs, { segmentBytes: 16 << 10 })
      if (landed.every(Boolean)) {
        expectRecords(seen, recordsOf(w.landed))
      } else {
        expectRecords(seen, before)
        expect(report.tornBytesDropped > 0, `seed ${seed}`).toBe(landed.some(Boolean))
        if (landed[sectors - 1]) partialWithLast++
      }
    }
    expect(partialWithLast).toBeGreaterThan(0) // the torn commit's last sector (its COMMIT frame) landed without the rest
  })

  it('a bit flipped in a torn commit, in a sector that landed, is still a tear: a sector of it is missing', () => {
    const w = writer(4096)
    for (let i = 1; i <= 4; i++) w.commit([rec(1, i), rec(2, i)])
    w.lie(true)
    const last = w.commit([rec(1, 5, 1, 600), rec(2, 5, 1, 100)]) // 2 sectors
    const fs = w.fs.crash({ unsynced: 'tear', tearAt: SECTOR })
    fs.flipBit(segmentPath(1), last.start + 40, 2)
    const first = openWal(fs, { segmentBytes: 4096 })
    expectRecords(first.seen, recordsOf(w.landed.slice(0, -1)))
    expect(first.report.tornTails).toEqual([{ file: segmentPath(1), offset: last.start, bytes: last.bytes }])
    const extra = rec(3, 1, 1, 5)
    commitAll(first.wal, [extra])
    first.wal.close()
    expectRecords(openWal(fs.crash()).seen, [...recordsOf(w.landed.slice(0, -1)), extra])
  })

  it('a damaged sector after the data (a stale one of a previous life) is not refused: it is not a commit', async () => {
    const s = await scenario('recycled')
    const fs = s.fs.crash()
    fs.flipBit(segmentPath(s.last.seq), s.last.start + 3, 1) // the stale sector's stamp
    expectRecords(openWal(fs, { segmentBytes: 2048 }).seen, s.before)
  })
})

describe('wal recovery - the newest acknowledged commit is never mistaken for a tear', () => {
  function acknowledged(lastPayload: number) {
    const w = writer(8192)
    for (let i = 1; i <= 4; i++) w.commit([rec(1, i, 1, 100)])
    const last = w.commit([rec(1, 5, 1, lastPayload), rec(2, 5, 1, 40)])
    w.wal.close()
    return { w, last }
  }

  it('a flipped bit anywhere in it is refused as WAL_CORRUPT, naming file and offset', () => {
    for (const payload of [100, 900]) {
      const { w, last } = acknowledged(payload)
      for (let off = last.start; off < last.start + last.bytes; off += 13) {
        const fs = w.fs.crash()
        fs.flipBit(segmentPath(1), off, off % 8)
        const e = openFails(fs, { segmentBytes: 8192 })
        expect(e.code, `flip at ${off} of a ${last.bytes}-byte commit`).toBe('WAL_CORRUPT')
        expect(e.message).toContain(segmentPath(1))
        expect(e.message).toMatch(/damaged after it was written/)
      }
    }
  })

  it('a sector of it the disk zeroed after the sync reads as never written: dropped as torn, and reported', () => {
    // Indistinguishable from a sector that was never written: the limit of a single copy
    // (a replica recovers it from its peers). Reported, never hidden.
    const { w, last } = acknowledged(700)
    expect(last.bytes).toBe(2 * SECTOR)
    poke(w.fs, segmentPath(1), last.start + SECTOR, new Uint8Array(SECTOR))
    const { report } = openWal(w.fs.crash(), { segmentBytes: 8192 })
    expect(report.tornTails).toEqual([{ file: segmentPath(1), offset: last.start, bytes: last.bytes }])
  })
})

describe('wal recovery - corruption is refused, naming file and offset', () => {
  function tenCommits(segmentBytes = 8192) {
    const w = writer(segmentBytes)
    for (let i = 1; i <= 10; i++) w.commit([rec(1, i, 1, 100), rec(2, i, 1, 60)])
    w.wal.close()
    return w
  }

  it('a bit flipped in an acknowledged commit that later commits follow', () => {
    const w = tenCommits()
    const c = w.landed[4]!
    w.fs.flipBit(segmentPath(1), c.start + 50, 0)
    const e = openFails(w.fs)
    expect(e.code).toBe('WAL_CORRUPT')
    expect(e.message).toContain(segmentPath(1))
    expect(e.message).toContain(`offset ${c.start}:`)
    expect(e.message).toMatch(/checksum/)
  })

  it('a lost (zeroed) stretch in the middle of the last segment', () => {
    const w = tenCommits()
    const c = w.landed[3]!
    poke(w.fs, segmentPath(1), c.start, new Uint8Array(c.bytes))
    const e = openFails(w.fs)
    expect(e.code).toBe('WAL_CORRUPT')
    expect(e.message).toContain(`${segmentPath(1)} at byte offset ${c.start}: holds no commit, yet a complete commit of this segment`)
  })

  it('a length beyond the record bound is a bad frame, not an allocation', () => {
    const w = tenCommits()
    const c = w.landed[6]!
    poke(w.fs, segmentPath(1), c.start + 20, Uint8Array.of(0x7f, 0xff, 0xff, 0xff))
    const e = openFails(w.fs)
    expect(e.code).toBe('WAL_CORRUPT')
    expect(e.message).toMatch(/beyond the record size bound/)
  })

  it('a bad frame in a sealed segment, even in its last commit', () => {
    const w = tenCommits(2048)
    const sealed = w.landed.filter((l) => l.seq === 1)
    const lastOfSealed = sealed[sealed.length - 1]!
    w.fs.flipBit(segmentPath(1), lastOfSealed.start + 40, 5)
    const e = openFails(w.fs, { segmentBytes: 2048 })
    expect(e.code).toBe('WAL_CORRUPT')
    expect(e.message).toContain(`${segmentPath(1)} at byte offset ${lastOfSealed.start}`)
    expect(e.message).toMatch(/checksum/)
  })

  it('a sealed segment shorter than the end its successor recorded', () => {
    const w = tenCommits(2048)
    const sealed = w.landed.filter((l) => l.seq === 2)
    const end = sealed[sealed.length - 1]!.start + sealed[sealed.length - 1]!.bytes
    truncate(w.fs, segmentPath(2), end - 10)
    const e = openFails(w.fs, { segmentBytes: 2048 })
    expect(e.code).toBe('WAL_CORRUPT')
    expect(e.message).toContain(segmentPath(2))
    expect(e.message).toMatch(new RegExp(`shorter than its recorded end ${end}`))
  })

  it('a first frame (SEAL) damaged in a segment that later segments follow', () => {
    const w = tenCommits(2048)
    expect(w.wal.activeSeq).toBeGreaterThan(3)
    w.fs.flipBit(segmentPath(2), DATA_START + 24, 1)
    const e = openFails(w.fs, { segmentBytes: 2048 })
    expect(e.code).toBe('WAL_CORRUPT')
    expect(e.message).toContain(`${segmentPath(2)} at byte offset ${DATA_START}: has no valid SEAL frame`)
  })

  it('a gap in segment sequence numbers', () => {
    const w = tenCommits(2048)
    w.fs.remove(segmentPath(2))
    const e = openFails(w.fs, { segmentBytes: 2048 })
    expect(e.code).toBe('WAL_CORRUPT')
    expect(e.message).toMatch(/0000000003\.wal follows 0000000001\.wal; 0000000002\.wal is missing/)
  })

  it('a foreign file, an unknown version, a header that names another seq', () => {
    const w = tenCommits(2048)
    const fs = w.fs.crash()
    fs.flipBit(segmentPath(2), 0, 0)
    let e = openFails(fs, { segmentBytes: 2048 })
    expect([e.code, e.message.includes(segmentPath(2)), /not a raftmq WAL segment/.test(e.message)]).toEqual(['WAL_CORRUPT', true, true])

    for (const version of [1, 3]) {
      const other = w.fs.crash()
      const header = other.readAll(segmentPath(2)).slice(0, 32)
      header[5] = version
      new DataView(header.buffer).setUint32(28, crc32c(header.subarray(0, 28)))
      poke(other, segmentPath(2), 0, header)
      e = openFails(other, { segmentBytes: 2048 })
      expect([e.code, e.message.includes(segmentPath(2)), e.message.includes(`format version ${version}`)]).toEqual(['WAL_INCOMPATIBLE', true, true])
    }

    const renamed = w.fs.crash()
    const h2 = renamed.readAll(segmentPath(2)).slice(0, 32)
    new DataView(h2.buffer).setUint32(8, 7)
    new DataView(h2.buffer).setUint32(28, crc32c(h2.subarray(0, 28)))
    poke(renamed, segmentPath(2), 0, h2)
    e = openFails(renamed, { segmentBytes: 2048 })
    expect(e.code).toBe('WAL_CORRUPT')
    expect(e.message).toContain(`${segmentPath(2)} at byte offset 8: has seq 7 in its header`)
  })

  it('nothing is dropped silently: a damaged middle commit is refused whatever bit it is', () => {
    const w = tenCommits()
    const c = w.landed[5]!
    for (let off = c.start; off < c.start + c.bytes; off += 7) {
      const fs = w.fs.crash()
      fs.flipBit(segmentPath(1), off, off % 8)
      expect(openFails(fs).code, `flip at ${off}`).toBe('WAL_CORRUPT')
    }
  })
})

describe('wal recovery - recycled files', () => {
  it("stale sectors of a file's previous life end the data: never replayed", async () => {
    const s = await scenario('recycled')
    // Nothing of the torn commit landed: a whole, stamped sector of the older seq sits where new data would be.
    const fs = s.fs.crash({ unsynced: 'tear', tearAt: SECTOR - 1 })
    const stale = fs.readAll(segmentPath(s.last.seq)).subarray(s.last.start)
    expect(new DataView(stale.buffer, stale.byteOffset).getUint32(0)).toBeLessThan(s.last.seq)
    const { seen, report } = openWal(fs, { segmentBytes: 2048 })
    expectRecords(seen, s.before)
    expect(report.tornTails).toEqual([])
  })
})

describe('wal recovery - report', () => {
  it('counts segments, records and bytes, and names the torn tail', () => {
    const w = writer(4096)
    for (let i = 1; i <= 12; i++) w.commit([rec(1, i, 1, 100)])
    w.lie(true)
    const last = w.commit([rec(1, 13, 1, 700)])
    const fs = w.fs.crash({ unsynced: 'tear', tearAt: 600 })
    // what is dropped: the torn commit's extent, within the file (a header-only segment ends sooner)
    const torn = Math.min(2 * SECTOR, fs.readAll(segmentPath(last.seq)).length - last.start)
    expect(torn).toBeGreaterThanOrEqual(SECTOR)
    const { report } = openWal(fs, { segmentBytes: 4096 })
    const synced = w.landed.slice(0, -1)
    expect(report).toEqual({
      segments: w.wal.activeSeq,
      records: 12,
      bytes: synced.reduce((n, l) => n + l.bytes, 0),
      firstSeq: 1,
      lastSeq: w.wal.activeSeq,
      tornBytesDropped: torn,
      tornTails: [{ file: segmentPath(last.seq), offset: last.start, bytes: torn }],
    })
  })
})
