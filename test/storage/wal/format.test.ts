import { Buffer } from 'node:buffer'
import { crc32c } from '@node-rs/crc32'
import { describe, expect, it } from 'vitest'
import { CommitBuffer, DATA_START, decodeSegmentHeader, encodeSegmentHeader, readFrame } from '../../../src/storage/wal/format.js'

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
  it('a segment header', () => {
    expect(encodeSegmentHeader(1).toString('hex')).toBe('726d71770001002000000001000000000000000000000000000000009d08ef4300000000')
  })

  it('a first commit: SEAL, one record, COMMIT, terminator', () => {
    const e = new CommitBuffer().encode(1, [{ group: 7, type: 3, index: 5, term: 2, payload: Uint8Array.of(1, 2, 3) }], { prevSeq: 0, prevEnd: 0 })
    expect(Buffer.concat(e.iovecs).toString('hex')).toBe(
      '0000001d722960d60000000100000000c8000000000000000000000000000000000000002079' +
        '8b93a50000000100000007030000000000000005000000000000000201020300' +
        '00001db4d66f480000000100000000c9000000000000000200000000000000450000' +
        '0000',
    )
    expect(e.frameBytes).toBe(33 + 36 + 33)
    // The hand-built frame of the grammar is the same record.
    expect(Buffer.concat(e.iovecs).subarray(33, 69).equals(frame({ seq: 1, group: 7, type: 3, index: 5, term: 2, payload: Uint8Array.of(1, 2, 3) }))).toBe(true)
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
