import { Buffer } from 'node:buffer'
import { crc32c } from '@node-rs/crc32'
import { describe, expect, it } from 'vitest'
import { Prng } from '../../../src/base/index.js'
import { MemoryWalFs } from '../../../src/storage/wal/index.js'
import type { WalRecord } from '../../../src/storage/wal/index.js'
import { commitAll, expectRecords, lyingSync, openFails, openWal, poke, rec, segmentPath, truncate, turn } from './helpers.js'

const DATA_START = 32

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
    const w = writer(4096)
    for (let i = 1; i <= 6; i++) w.commit([rec(1, i), rec(2, i, 1, 0), rec(3, i, 1, 150)].slice(0, 1 + (i % 3)))
    w.lie(true)
    const last = w.commit([rec(1, 7, 2, 50), rec(2, 7, 2, 0), rec(3, 7, 2, 200)])
    return { fs: w.fs, segmentBytes: 4096, before: recordsOf(w.landed.slice(0, -1)), last }
  }
  if (kind === 'rolling') {
    const w = writer(1024)
    await turn()
    for (let i = 1; i <= 5; i++) w.commit([rec(1, i, 1, 100)])
    await turn()
    w.lie(true)
    const last = w.commit([rec(1, 6, 1, 200), rec(2, 1, 1, 30)])
    expect(last.seq).toBe(2)
    return { fs: w.fs, segmentBytes: 1024, before: recordsOf(w.landed.slice(0, -1)), last }
  }
  // Commits of one 100 B record each, so a recycled file's stale frames line up with new ones.
  const w = writer(2048)
  for (let i = 1; i <= 50; i++) {
    w.commit([rec(1, i, 1, 100)])
    await turn()
  }
  const firstLive = w.wal.activeSeq
  expect(w.wal.retire(firstLive - 1).ok).toBe(true)
  for (let i = 51; i <= 75; i++) {
    w.commit([rec(1, i, 1, 100)])
    await turn()
  }
  w.lie(true)
  const last = w.commit([rec(1, 76, 1, 100)])
  expect(last.seq).toBeGreaterThan(firstLive)
  const file = w.fs.readAll(segmentPath(last.seq))
  expect(file.length).toBe(2048)
  expect(file.subarray(last.start + last.bytes + 4).some((b) => b !== 0)).toBe(true) // a recycled file: stale bytes follow
  return { fs: w.fs, segmentBytes: 2048, before: recordsOf(w.landed.slice(0, -1).filter((l) => l.seq >= firstLive)), last }
}

describe('wal recovery - torn tail', () => {
  for (const kind of ['in-segment', 'rolling', 'recycled'] as const) {
    it(`${kind}: a crash tearing the last commit at any byte recovers exactly the commits before it (or all, once its COMMIT frame landed)`, async () => {
      const s = await scenario(kind)
      const writeBytes = s.last.bytes + 4 // frames and terminator: one writev
      const whole = s.fs.crash({ unsynced: 'keep' }).readAll(segmentPath(s.last.seq)).subarray(s.last.start, s.last.start + s.last.bytes)
      for (let k = 0; k <= writeBytes; k++) {
        const fs = s.fs.crash({ unsynced: 'tear', tearAt: k })
        // Complete once every byte of its frames is on disk: usually once all landed, but
        // in a recycled file the stale bytes under the COMMIT frame's tail are the same.
        const onDisk = fs.readAll(segmentPath(s.last.seq)).subarray(s.last.start, s.last.start + s.last.bytes)
        const complete = Buffer.compare(onDisk, whole) === 0
        expect(complete || k < s.last.bytes).toBe(true)
        const first = openWal(fs, { segmentBytes: s.segmentBytes })
        expectRecords(first.seen, complete ? [...s.before, ...s.last.records] : s.before)
        if (!complete && k >= 8) {
          expect(first.report.tornBytesDropped, `tear at ${k}`).toBeGreaterThan(0)
          expect(first.report.tornTails[0], `tear at ${k}`).toMatchObject({ file: segmentPath(s.last.seq), offset: s.last.start })
        }
        // The torn bytes are gone for good, and the next commit goes where they were.
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
    const before = recordsOf(w.landed.slice(0, -1))
    let whole = 0
    let markerOnly = 0
    for (let seed = 1; seed <= 200; seed++) {
      const fs = w.fs.crash({ unsynced: 'sectors', prng: new Prng(seed) })
      const bytes = fs.readAll(segmentPath(1))
      const markerAt = last.start + last.bytes - 33
      const markerLanded = bytes[markerAt + 3] === 29
      const { seen, report } = openWal(fs, { segmentBytes: 16 << 10 })
      if (seen.length > before.length) {
        whole++
        expectRecords(seen, recordsOf(w.landed))
      } else {
        expectRecords(seen, before)
        if (markerLanded) markerOnly++
        if (markerLanded) expect(report.tornBytesDropped).toBeGreaterThanOrEqual(last.bytes)
      }
    }
    expect(markerOnly).toBeGreaterThan(0) // the torn commit's own COMMIT frame landed without the rest
    void whole
  })

  it('a bit flipped in the unsynced commit only is a torn tail: truncated, reported, zeroed', () => {
    const w = writer(4096)
    for (let i = 1; i <= 4; i++) w.commit([rec(1, i), rec(2, i)])
    w.lie(true)
    const last = w.commit([rec(1, 5, 1, 100), rec(2, 5, 1, 100)])
    const fs = w.fs.crash({ unsynced: 'keep' })
    fs.flipBit(segmentPath(1), last.start + 40, 2) // in the first record's payload; its COMMIT frame is intact
    const first = openWal(fs, { segmentBytes: 4096 })
    expectRecords(first.seen, recordsOf(w.landed.slice(0, -1)))
    expect(first.report.tornTails).toEqual([{ file: segmentPath(1), offset: last.start, bytes: last.bytes }])
    // A shorter commit now: the torn commit's COMMIT frame must not survive beyond it.
    const extra = rec(3, 1, 1, 5)
    commitAll(first.wal, [extra])
    first.wal.close()
    expectRecords(openWal(fs.crash()).seen, [...recordsOf(w.landed.slice(0, -1)), extra])
  })
})

describe('wal recovery - corruption is refused, naming file and offset', () => {
  function tenCommits(segmentBytes = 4096) {
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
    expect(e.message).toContain(`${segmentPath(1)} at byte offset ${c.start}: holds a zero length, yet a complete commit`)
  })

  it('a length beyond the record bound is a bad frame, not an allocation', () => {
    const w = tenCommits()
    const c = w.landed[6]!
    poke(w.fs, segmentPath(1), c.start, Uint8Array.of(0x7f, 0xff, 0xff, 0xff))
    const e = openFails(w.fs)
    expect(e.code).toBe('WAL_CORRUPT')
    expect(e.message).toMatch(/beyond the record size bound/)
  })

  it('a bad frame in a sealed segment, even in its last commit', () => {
    const w = tenCommits(1024)
    const sealed = w.landed.filter((l) => l.seq === 1)
    const lastOfSealed = sealed[sealed.length - 1]!
    w.fs.flipBit(segmentPath(1), lastOfSealed.start + 40, 5)
    const e = openFails(w.fs, { segmentBytes: 1024 })
    expect(e.code).toBe('WAL_CORRUPT')
    expect(e.message).toContain(`${segmentPath(1)} at byte offset ${lastOfSealed.start}`)
    expect(e.message).toMatch(/before its recorded end/)
  })

  it('a sealed segment shorter than the end its successor recorded', () => {
    const w = tenCommits(1024)
    const sealed = w.landed.filter((l) => l.seq === 2)
    const end = sealed[sealed.length - 1]!.start + sealed[sealed.length - 1]!.bytes
    truncate(w.fs, segmentPath(2), end - 10)
    const e = openFails(w.fs, { segmentBytes: 1024 })
    expect(e.code).toBe('WAL_CORRUPT')
    expect(e.message).toContain(segmentPath(2))
    expect(e.message).toMatch(new RegExp(`shorter than its recorded end ${end}`))
  })

  it('a first frame (SEAL) damaged in a segment that later segments follow', () => {
    const w = tenCommits(1024)
    expect(w.wal.activeSeq).toBeGreaterThan(3)
    w.fs.flipBit(segmentPath(2), DATA_START + 20, 1)
    const e = openFails(w.fs, { segmentBytes: 1024 })
    expect(e.code).toBe('WAL_CORRUPT')
    expect(e.message).toContain(`${segmentPath(2)} at byte offset ${DATA_START}: has no valid SEAL frame`)
  })

  it('a gap in segment sequence numbers', () => {
    const w = tenCommits(1024)
    w.fs.remove(segmentPath(2))
    const e = openFails(w.fs, { segmentBytes: 1024 })
    expect(e.code).toBe('WAL_CORRUPT')
    expect(e.message).toMatch(/0000000003\.wal follows 0000000001\.wal; 0000000002\.wal is missing/)
  })

  it('a foreign file, an unknown version, a header that names another seq', () => {
    const w = tenCommits(1024)
    const fs = w.fs.crash()
    fs.flipBit(segmentPath(2), 0, 0)
    let e = openFails(fs, { segmentBytes: 1024 })
    expect([e.code, e.message.includes(segmentPath(2)), /not a raftmq WAL segment/.test(e.message)]).toEqual(['WAL_CORRUPT', true, true])

    const v2 = w.fs.crash()
    const header = v2.readAll(segmentPath(2)).slice(0, 32)
    header[5] = 2
    new DataView(header.buffer).setUint32(28, crc32c(header.subarray(0, 28)))
    poke(v2, segmentPath(2), 0, header)
    e = openFails(v2, { segmentBytes: 1024 })
    expect([e.code, e.message.includes(segmentPath(2)), /format version 2/.test(e.message)]).toEqual(['WAL_INCOMPATIBLE', true, true])

    const renamed = w.fs.crash()
    const h2 = renamed.readAll(segmentPath(2)).slice(0, 32)
    new DataView(h2.buffer).setUint32(8, 7)
    new DataView(h2.buffer).setUint32(28, crc32c(h2.subarray(0, 28)))
    poke(renamed, segmentPath(2), 0, h2)
    e = openFails(renamed, { segmentBytes: 1024 })
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
  it("stale frames of a file's previous life end the data: never replayed", async () => {
    const s = await scenario('recycled')
    // Only the length field of the torn commit's first frame landed: it equals the stale
    // frame's, so a whole, checksummed frame of the older seq sits where new data would be.
    const fs = s.fs.crash({ unsynced: 'tear', tearAt: 4 })
    const stale = fs.readAll(segmentPath(s.last.seq)).subarray(s.last.start)
    expect(new DataView(stale.buffer, stale.byteOffset).getUint32(8)).toBeLessThan(s.last.seq)
    const { seen } = openWal(fs, { segmentBytes: 2048 })
    expectRecords(seen, s.before)
  })
})

describe('wal recovery - report', () => {
  it('counts segments, records and bytes, and names the torn tail', () => {
    const w = writer(1024)
    for (let i = 1; i <= 12; i++) w.commit([rec(1, i, 1, 100)])
    w.lie(true)
    const last = w.commit([rec(1, 13, 1, 100)])
    const { report } = openWal(w.fs.crash({ unsynced: 'tear', tearAt: 50 }), { segmentBytes: 1024 })
    const synced = w.landed.slice(0, -1)
    expect(report).toEqual({
      segments: w.wal.activeSeq,
      records: 12,
      bytes: synced.reduce((n, l) => n + l.bytes, 0),
      firstSeq: 1,
      lastSeq: w.wal.activeSeq,
      tornBytesDropped: report.tornTails[0]?.bytes,
      tornTails: [{ file: segmentPath(last.seq), offset: last.start, bytes: expect.any(Number) }],
    })
    expect(report.tornBytesDropped).toBeGreaterThanOrEqual(50 - 33)
  })
})
