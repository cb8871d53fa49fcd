import { Buffer } from 'node:buffer'
import { crc32c } from '@node-rs/crc32'
import { describe, expect, it } from 'vitest'
import { CommitBuffer, DATA_START, commitDiskBytes, decodeSegmentHeader, encodeSegmentHeader, fileOffsetOf, gatherFrames, readFrame, readStamp } from '../../../src/storage/wal/format.js'

/** A frame built by hand from the grammar in format.ts, independently of the encoder. */
function frame(fields: { seq: number; group?: number; type: number; index?: number; term?: number; payload?: Uint8Array; indexHi?: number }): Buffer {
  const payload = fields.payload ?? new Uint8Array(0)
  const b = Buffer.alloc(33 + payload.length)
  b.writeUInt32BE(29 + payload.length, 0)
  b.writeUInt32BE(fields.seq, 8)
  b.writeUInt32BE(fields.group ?? 0, 12)
  b[16] = fields.type
  b.writeUInt32BE(fields.indexHi ?? 0, 17)
  b.writeUInt32BE(fields.index ?? 0, 21)
  b.writeUInt32BE(fields.term ?? 0, 29)
  b.set(payload, 33)
  b.writeUInt32BE(crc32c(b.subarray(8)), 4)
  return b
}

/** A buffer holding `f` at DATA_START, as in a segment. */
function at(f: Buffer, extra = 0): Buffer {
  return Buffer.concat([Buffer.alloc(DATA_START), f, Buffer.alloc(extra)])
}

describe('wal format - golden bytes', () => {
  it('a segment header: 32 bytes in a sector of its own', () => {
    const want = Buffer.alloc(512)
    want.writeUInt32BE(0x726d7177, 0)
    want.writeUInt16BE(2, 4)
    want.writeUInt16BE(32, 6)
    want.writeUInt32BE(1, 8)
    want.writeUInt32BE(crc32c(want.subarray(0, 28)), 28)
    expect(encodeSegmentHeader(1).equals(want)).toBe(true)
  })

  it('a first commit: one sector, its stamp, then SEAL, one record, COMMIT and zero padding', () => {
    const record = { group: 7, type: 3, index: 5, term: 2, payload: Uint8Array.of(1, 2, 3) }
    const e = new CommitBuffer().encode({ seq: 1, commit: 1, at: 512 }, [record], { prevSeq: 0, prevEnd: 0 })
    expect([e.frameBytes, e.diskBytes, e.iovecs.length]).toEqual([33 + 36 + 33, 512, 1])
    const b = Buffer.from(e.iovecs[0]!)
    // stamp: seq 1, commit 1, part 0 of 1 sector, and the check (golden: it mixes in the sector's place, 1)
    expect(b.subarray(0, 20).toString('hex')).toBe('00000001' + '00000001' + '00000000' + '00000001' + '0bd1585a')
    const frames = Buffer.concat([
      frame({ seq: 1, type: 200, index: 0, term: 0 }),
      frame({ seq: 1, ...record }),
      frame({ seq: 1, type: 201, index: 2, term: 33 + 36 }),
    ])
    expect(b.subarray(20, 20 + frames.length).equals(frames)).toBe(true)
    expect(b.subarray(20 + frames.length).every((x) => x === 0)).toBe(true)
  })
})

describe('wal format - sectors', () => {
  const payload = Uint8Array.from({ length: 1000 }, (_, k) => k & 0xff)
  const e = new CommitBuffer().encode({ seq: 4, commit: 9, at: 3 * 512 }, [{ group: 1, type: 1, index: 1, term: 1, payload }], null)
  const file = Buffer.concat([Buffer.alloc(3 * 512), Buffer.from(e.iovecs[0]!)])

  it('a commit runs on from sector to sector, each stamped with its part', () => {
    expect(e.diskBytes).toBe(3 * 512) // 33 + 1000 + 33 frame bytes, 492 a sector
    for (let k = 0; k < 3; k++) expect(readStamp(file, (3 + k) * 512)).toEqual({ kind: 'stamp', seq: 4, commit: 9, part: k, sectors: 3 })
    const gathered = Buffer.alloc(3 * 492)
    gatherFrames(file, 3 * 512, 3, gathered, 0)
    const f = readFrame(gathered, 0, gathered.length, 4)
    expect(f).toMatchObject({ kind: 'frame', bytes: 1033, group: 1 })
    expect(gathered.subarray(33, 1033).equals(Buffer.from(payload))).toBe(true)
    // frame byte l sits at fileOffsetOf(start, l)
    for (const l of [0, 491, 492, 1000]) expect(file[fileOffsetOf(3 * 512, l)]).toBe(gathered[l])
  })

  it('commitDiskBytes is what the encoder writes', () => {
    const buf = new CommitBuffer()
    for (const sizes of [[0], [100], [459], [460], [1000], [100, 5000, 7], Array.from({ length: 300 }, (_, k) => k * 3)]) {
      for (const seal of [false, true]) {
        const e = buf.encode({ seq: 1, commit: 1, at: 512 }, sizes.map((n, k) => ({ group: 1, type: 1, index: k, term: 1, payload: new Uint8Array(n) })), seal ? { prevSeq: 0, prevEnd: 0 } : null)
        expect(commitDiskBytes(sizes, seal), `${sizes.length} records, seal ${seal}`).toBe(e.diskBytes)
      }
    }
  })

  it('a stamp reads as blank when zero, damaged when any bit of it flips or it sits at another place', () => {
    expect(readStamp(Buffer.alloc(512), 0)).toEqual({ kind: 'blank' })
    for (let bit = 0; bit < 160; bit += 3) {
      const b = Buffer.from(file)
      b[4 * 512 + (bit >> 3)]! ^= 1 << (bit & 7)
      expect(readStamp(b, 4 * 512).kind, `bit ${bit}`).toBe('damaged')
    }
    const moved = Buffer.concat([file, file.subarray(4 * 512, 5 * 512)])
    expect(readStamp(moved, 6 * 512).kind).toBe('damaged')
  })
})

describe('wal format - segment header', () => {
  it('round trips, and tells a foreign file from an unknown version from damage', () => {
    const h = encodeSegmentHeader(42)
    expect(decodeSegmentHeader(h)).toEqual({ kind: 'ok', seq: 42 })
    const foreign = Buffer.from(h)
    foreign[0] = 0x7f
    expect(decodeSegmentHeader(foreign).kind).toBe('foreign')
    const v9 = Buffer.from(h)
    v9.writeUInt16BE(9, 4)
    expect(decodeSegmentHeader(v9).kind).toBe('version')
    const damaged = Buffer.from(h)
    damaged[12] = 1
    expect(decodeSegmentHeader(damaged).kind).toBe('damaged')
    expect(decodeSegmentHeader(h.subarray(0, 10)).kind).toBe('damaged')
  })
})

describe('wal format - readFrame', () => {
  it('reads a valid frame of its segment', () => {
    const b = at(frame({ seq: 3, group: 9, type: 1, indexHi: 256, index: 7, term: 4, payload: Uint8Array.of(5, 6) }))
    expect(readFrame(b, DATA_START, b.length, 3)).toEqual({ kind: 'frame', bytes: 35, group: 9, type: 1, index: 2 ** 40 + 7, term: 4, payloadAt: DATA_START + 33 })
  })

  it('a zero length, or nothing left, is the end; a stale seq is stale; a newer one is impossible', () => {
    expect(readFrame(Buffer.alloc(100), DATA_START, 100, 1)).toEqual({ kind: 'end' })
    expect(readFrame(Buffer.alloc(34), DATA_START, 34, 1)).toEqual({ kind: 'end' })
    const f = at(frame({ seq: 2, type: 1 }))
    expect(readFrame(f, DATA_START, f.length, 5)).toEqual({ kind: 'stale', seq: 2 })
    expect(readFrame(f, DATA_START, f.length, 1)).toMatchObject({ kind: 'alien', reason: expect.stringMatching(/newer/) })
  })

  it('bounds every length before reading by it', () => {
    const b = Buffer.alloc(DATA_START + 64)
    b.writeUInt32BE(0xffff_ffff, DATA_START)
    expect(readFrame(b, DATA_START, b.length, 1)).toMatchObject({ kind: 'bad', reason: expect.stringMatching(/record size bound/), extentBytes: 33 })
    b.writeUInt32BE(1000, DATA_START)
    expect(readFrame(b, DATA_START, b.length, 1)).toMatchObject({ kind: 'bad', reason: expect.stringMatching(/past the end/) })
    b.writeUInt32BE(5, DATA_START)
    expect(readFrame(b, DATA_START, b.length, 1)).toMatchObject({ kind: 'bad', reason: expect.stringMatching(/below a frame header/) })
    const short = Buffer.alloc(DATA_START + 2, 1)
    expect(readFrame(short, DATA_START, short.length, 1)).toMatchObject({ kind: 'bad', reason: expect.stringMatching(/truncated length/) })
  })

  it('a checksum mismatch is bad; a checksummed reserved type or unsafe integer is impossible', () => {
    const f = at(frame({ seq: 1, type: 1, payload: Uint8Array.of(1, 2, 3) }))
    f[DATA_START + 34] ^= 4
    expect(readFrame(f, DATA_START, f.length, 1)).toMatchObject({ kind: 'bad', reason: 'a checksum mismatch', extentBytes: 36 })
    for (const type of [0, 202, 255]) {
      const g = at(frame({ seq: 1, type }))
      expect(readFrame(g, DATA_START, g.length, 1)).toMatchObject({ kind: 'alien', reason: `a frame of reserved type ${type}` })
    }
    const unsafe = at(frame({ seq: 1, type: 1, indexHi: 0x20_0000 }))
    expect(readFrame(unsafe, DATA_START, unsafe.length, 1)).toMatchObject({ kind: 'alien', reason: expect.stringMatching(/safe-integer/) })
  })
})
