import { Buffer } from 'node:buffer'
import { crc32 } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { AssertionError, Prng } from '../../src/base/index.js'
import { EntryType } from '../../src/raft/index.js'
import {
  KeySpace,
  crc32Small,
  decodeApplied,
  decodeEntryValue,
  decodeHardState,
  decodeIndexKey,
  decodeSnapshotMeta,
  encodeApplied,
  encodeEntryValue,
  encodeHardState,
  encodeSnapshotMeta,
  entryKey,
  stateMachineKey,
  termRunKey,
} from '../../src/storage/keys.js'
import { ent } from './helpers.js'

describe('storage - key layout', () => {
  // LevelDB orders keys bytewise: big-endian u64 must make that numeric order, past 2^32 too
  it('entry keys sort in index order across the whole safe range', () => {
    const prng = new Prng(7)
    const ns = [0, 1, 255, 256, 65_535, 0xffff_ffff, 0x1_0000_0000, 0x1_0000_0001, Number.MAX_SAFE_INTEGER]
    for (let k = 0; k < 200; k++) ns.push(prng.int(2 ** 31) * 2 ** prng.int(22) + prng.int(1000))
    const sorted = [...new Set(ns)].sort((a, b) => a - b)
    const byKey = [...sorted].map((n) => entryKey(n)).sort(Buffer.compare)
    expect(byKey.map((k) => decodeIndexKey(k, KeySpace.Entry))).toEqual(sorted)
  })

  it('spaces do not interleave, and a key of another space does not decode', () => {
    const keys = [stateMachineKey(Uint8Array.of(0)), termRunKey(0), entryKey(Number.MAX_SAFE_INTEGER), entryKey(0), Uint8Array.of(KeySpace.HardState)]
    const order = [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))).map((k) => k[0])
    expect(order).toEqual([KeySpace.Entry, KeySpace.Entry, KeySpace.HardState, KeySpace.TermRun, KeySpace.StateMachine])
    expect(decodeIndexKey(termRunKey(5), KeySpace.Entry)).toBe(-1)
    expect(() => entryKey(-1)).toThrow(AssertionError)
    expect(() => entryKey(2 ** 53)).toThrow(AssertionError)
  })

  it('an entry value round-trips with its data raw after a 13-byte header', () => {
    for (const e of [ent(1, 1, new Uint8Array(0)), ent(2 ** 40, 2 ** 45, Uint8Array.of(1, 2, 3), EntryType.ConfChange), ent(9, 3, new Uint8Array(116 * 1024).fill(7))]) {
      const v = encodeEntryValue(e)
      expect(v.length).toBe(13 + e.data.length)
      expect(Buffer.from(v.subarray(13)).equals(Buffer.from(e.data))).toBe(true)
      const back = decodeEntryValue(e.index, v)
      expect(back).not.toBeNull()
      expect({ ...back!, data: Buffer.from(back!.data) }).toEqual({ ...e, data: Buffer.from(e.data) })
    }
  })

  it('the header CRC computed in JS is zlib CRC-32, so the chained sum is CRC-32 of term, type and data', () => {
    const prng = new Prng(3)
    for (let k = 0; k < 200; k++) {
      const b = Uint8Array.from({ length: prng.int(40) }, () => prng.int(256))
      expect(crc32Small(b, 0, b.length)).toBe(crc32(b))
    }
    const e = ent(300, 7, Uint8Array.of(5, 6, 7))
    const v = encodeEntryValue(e)
    expect(v.readUInt32BE(0)).toBe(crc32(v.subarray(4)))
  })

  it('a damaged entry value is rejected, not misread', () => {
    const v = encodeEntryValue(ent(5, 2, new Uint8Array(100).fill(1)))
    for (const at of [0, 7, 8, 9, 12, 13, 60, 112]) {
      const bad = Buffer.from(v)
      bad[at]! ^= 0x10
      expect(decodeEntryValue(5, bad), `flipped byte ${at}`).toBeNull()
    }
    expect(decodeEntryValue(5, v.subarray(0, 12))).toBeNull()
    expect(decodeEntryValue(5, v.subarray(0, v.length - 1))).toBeNull()
  })

  it('hard state, snapshot metadata and applied state round-trip', () => {
    const hs = { term: 2 ** 40 + 3, vote: 0xffff_fffe, commit: 2 ** 50 }
    expect(decodeHardState(encodeHardState(hs))).toEqual(hs)
    const meta = { index: 77, term: 5, conf: { voters: [1, 2, 5] } }
    expect(decodeSnapshotMeta(encodeSnapshotMeta(meta))).toEqual(meta)
    expect(decodeSnapshotMeta(encodeSnapshotMeta({ index: 0, term: 0, conf: { voters: [] } }))).toEqual({ index: 0, term: 0, conf: { voters: [] } })
    const a = decodeApplied(encodeApplied({ index: 12, blob: Uint8Array.of(9, 8, 7) }))
    expect(a?.index).toBe(12)
    expect([...a!.blob]).toEqual([9, 8, 7])
    expect(decodeHardState(Uint8Array.of(1, 2, 3))).toBeNull()
    expect(decodeSnapshotMeta(encodeSnapshotMeta(meta).subarray(0, 23))).toBeNull()
  })
})
