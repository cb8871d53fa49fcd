import { Buffer } from 'node:buffer'
import { crc32c } from '@node-rs/crc32'
import { describe, expect, it } from 'vitest'
import { AssertionError, Prng } from '../../src/base/index.js'
import { EntryType } from '../../src/raft/index.js'
import {
  APPLIED_KEY,
  HARD_STATE_KEY,
  KeySpace,
  decodeApplied,
  decodeEntryValue,
  decodeHardState,
  decodeIndexKey,
  encodeApplied,
  encodeEntryValue,
  encodeHardState,
  entryKey,
  recordKey,
} from '../../src/storage/keys.js'
import { ent } from './helpers.js'

describe('storage - key layout of the partition store', () => {
  // LevelDB orders keys bytewise: big-endian u64 must make that numeric order, past 2^32 too
  it('record and entry keys sort in numeric order across the whole safe range', () => {
    const prng = new Prng(7)
    const ns = [0, 1, 255, 256, 65_535, 0xffff_ffff, 0x1_0000_0000, 0x1_0000_0001, Number.MAX_SAFE_INTEGER]
    for (let k = 0; k < 200; k++) ns.push(prng.int(2 ** 31) * 2 ** prng.int(22) + prng.int(1000))
    const sorted = [...new Set(ns)].sort((a, b) => a - b)
    for (const [make, space] of [[recordKey, KeySpace.Record], [entryKey, KeySpace.Entry]] as const) {
      const byKey = sorted.map((n) => make(n)).sort(Buffer.compare)
      expect(byKey.map((k) => decodeIndexKey(k, space))).toEqual(sorted)
    }
  })

  it('spaces do not interleave, and a key of another space does not decode', () => {
    const keys = [entryKey(0), recordKey(Number.MAX_SAFE_INTEGER), recordKey(0), APPLIED_KEY, HARD_STATE_KEY]
    const order = [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))).map((k) => k[0])
    expect(order).toEqual([KeySpace.Record, KeySpace.Record, KeySpace.HardState, KeySpace.Applied, KeySpace.Entry])
    expect(decodeIndexKey(recordKey(5), KeySpace.Entry)).toBe(-1)
    expect(() => recordKey(-1)).toThrow(AssertionError)
    expect(() => entryKey(2 ** 53)).toThrow(AssertionError)
  })

  it('an entry value round-trips behind its CRC-32C', () => {
    for (const e of [ent(1, 1, new Uint8Array(0)), ent(2 ** 40, 2 ** 45, Uint8Array.of(1, 2, 3), EntryType.ConfChange), ent(9, 3, new Uint8Array(116 * 1024).fill(7))]) {
      const v = encodeEntryValue(e)
      expect(v.length).toBe(13 + e.data.length)
      expect(v.readUInt32BE(0)).toBe(crc32c(v.subarray(4)))
      const back = decodeEntryValue(e.index, v)
      expect(back).not.toBeNull()
      expect({ ...back!, data: Buffer.from(back!.data) }).toEqual({ ...e, data: Buffer.from(e.data) })
    }
  })

  it('a damaged value is rejected, not misread', () => {
    const v = encodeEntryValue(ent(5, 2, new Uint8Array(100).fill(1)))
    for (const at of [0, 7, 8, 9, 12, 13, 60, 112]) {
      const bad = Buffer.from(v)
      bad[at]! ^= 0x10
      expect(decodeEntryValue(5, bad), `flipped byte ${at}`).toBeNull()
    }
    expect(decodeEntryValue(5, v.subarray(0, 12))).toBeNull()
    const hs = encodeHardState({ term: 3, vote: 1, commit: 9 })
    for (let at = 0; at < hs.length; at++) {
      const bad = Buffer.from(hs)
      bad[at]! ^= 0x04
      expect(decodeHardState(bad), `hard state byte ${at}`).toBeNull()
    }
    const ap = encodeApplied({ index: 12, term: 2, conf: { voters: [1] }, blob: Uint8Array.of(9, 8, 7) })
    const badAp = Buffer.from(ap)
    badAp[ap.length - 1]! ^= 1
    expect(decodeApplied(badAp)).toBeNull()
  })

  it('hard state and applied state round-trip', () => {
    const hs = { term: 2 ** 40 + 3, vote: 0xffff_fffe, commit: 2 ** 50 }
    expect(decodeHardState(encodeHardState(hs))).toEqual(hs)
    const a = decodeApplied(encodeApplied({ index: 12, term: 4, conf: { voters: [1, 2, 5] }, blob: Uint8Array.of(9, 8, 7) }))
    expect(a && { ...a, blob: [...a.blob] }).toEqual({ index: 12, term: 4, conf: { voters: [1, 2, 5] }, blob: [9, 8, 7] })
    expect(decodeHardState(Uint8Array.of(1, 2, 3))).toBeNull()
  })
})
