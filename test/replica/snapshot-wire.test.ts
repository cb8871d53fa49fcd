/**
 * The snapshot transfer items (src/replica/snapshot-wire.ts): every item survives its
 * bytes, as the data of a Raft Snap message through raft-wire too; bytes of any other
 * shape are an error value, never a throw.
 */
import { Packr } from 'msgpackr'
import { describe, expect, it } from 'vitest'
import { Prng } from '../../src/base/index.js'
import { MessageType } from '../../src/raft/index.js'
import { decodeRaftBatch, decodeTransferItem, encodeRaftBatch, encodeTransferItem, installMessage, transferMessage } from '../../src/replica/index.js'
import type { TransferItem } from '../../src/replica/index.js'

const packr = new Packr({ useRecords: false, moreTypes: false })
const raw = (v: unknown): Uint8Array => new Uint8Array(packr.pack(v))
const meta = { index: 1_000_042, term: 7, conf: { voters: [1, 2, 3] } }

const items: TransferItem[] = [
  { kind: 'offer', id: 3, stateBytes: 123_456, firstOffset: 10, endOffset: 5_000, recordBytes: 9_999_999, batches: 42 },
  { kind: 'offer', id: 4, stateBytes: 61, firstOffset: 77, endOffset: 77, recordBytes: 0, batches: 0 },
  { kind: 'ask', id: 3, what: 'state', at: 0 },
  { kind: 'ask', id: 3, what: 'records', at: 2 ** 40 },
  { kind: 'state', id: 3, at: 1 << 20, bytes: Uint8Array.of(1, 2, 3, 255) },
  { kind: 'records', id: 3, at: 10, batches: [Uint8Array.of(9, 9), new Uint8Array(70_000).fill(7), new Uint8Array(0)] },
  { kind: 'records', id: 3, at: 10, batches: [] },
  { kind: 'end', id: 3, done: true, reason: 'installed' },
  { kind: 'end', id: 3, done: false, reason: 'RANGE_GONE: retention dropped records from 10' },
]

describe('snapshot wire - transfer items', () => {
  it('every item round-trips through its bytes', () => {
    for (const item of items) {
      const back = decodeTransferItem(encodeTransferItem(item))
      expect(back).toEqual({ ok: true, value: item })
    }
  })

  it('rides a Raft Snap message through a raft batch unchanged, its metadata the snapshot being sent', () => {
    const msgs = items.map((item, k) => [k + 1, transferMessage(2, 1, 9, meta, item)] as const)
    const batch = decodeRaftBatch(encodeRaftBatch(msgs))
    expect(batch.ok).toBe(true)
    if (!batch.ok) return
    batch.value.forEach(([gid, m], k) => {
      expect(gid).toBe(k + 1)
      expect(m).toMatchObject({ type: MessageType.Snap, from: 2, to: 1, term: 9 })
      expect(m.snapshot!.metadata).toEqual(meta)
      expect(decodeTransferItem(m.snapshot!.data)).toEqual({ ok: true, value: items[k] })
    })
  })

  it("the install message is a Snap from the leader with the snapshot's metadata and no data", () => {
    const m = installMessage(2, 1, 9, meta)
    expect(m).toMatchObject({ type: MessageType.Snap, from: 2, to: 1, term: 9, snapshot: { metadata: meta } })
    expect(m.snapshot!.data.length).toBe(0)
    // ... which is no transfer item: a replica stepping one from the network would drop it
    expect(decodeTransferItem(m.snapshot!.data).ok).toBe(false)
  })

  it('cuts an end reason to its bound', () => {
    const back = decodeTransferItem(encodeTransferItem({ kind: 'end', id: 1, done: false, reason: 'x'.repeat(1000) }))
    expect(back.ok && back.value.kind === 'end' && back.value.reason.length).toBe(200)
  })

  it('refuses bytes of any other shape with MALFORMED', () => {
    const bad: Array<[string, Uint8Array]> = [
      ['empty', new Uint8Array(0)],
      ['not msgpack', Uint8Array.of(0xc1, 0xc1, 0xc1)],
      ['a map', raw({ kind: 'offer' })],
      ['a list of one', raw([1])],
      ['an unknown tag', raw([9, 1, 2, 3])],
      ['a negative id', raw([2, -1, 0, 0])],
      ['a fractional id', raw([2, 1.5, 0, 0])],
      ['an id past 2^53', raw([2, 2 ** 60, 0, 0])],
      ['an offer missing a field', raw([1, 1, 10, 0, 5, 100])],
      ['an offer with a string', raw([1, 1, '10', 0, 5, 100, 1])],
      ['an offer whose records run backwards', raw([1, 1, 10, 9, 5, 100, 1])],
      ['an offer of batches for no records', raw([1, 1, 10, 5, 5, 0, 2])],
      ['an ask of something else', raw([2, 1, 2, 0])],
      ['an ask at a negative position', raw([2, 1, 0, -5])],
      ['an ask with an extra field', raw([2, 1, 0, 0, 0])],
      ['a state chunk of a string', raw([3, 1, 0, 'bytes'])],
      ['a records chunk of numbers', raw([4, 1, 0, [1, 2, 3]])],
      ['a records chunk that is no list', raw([4, 1, 0, Uint8Array.of(1)])],
      ['an end without a flag', raw([5, 1, 'yes', 'why'])],
      ['an end with a reason too long', raw([5, 1, false, 'x'.repeat(201)])],
    ]
    for (const [what, bytes] of bad) {
      const r = decodeTransferItem(bytes)
      expect(r.ok, what).toBe(false)
      if (!r.ok) expect(r.error.code).toBe('MALFORMED')
    }
  })

  it('never throws on random or damaged bytes', () => {
    const prng = new Prng(17)
    const valid = items.map(encodeTransferItem)
    for (let i = 0; i < 5_000; i++) {
      let bytes: Uint8Array
      if (i % 2 === 0) {
        bytes = new Uint8Array(prng.int(64))
        for (let k = 0; k < bytes.length; k++) bytes[k] = prng.int(256)
      } else {
        bytes = valid[prng.int(valid.length)]!.slice()
        bytes[prng.int(bytes.length)] = prng.int(256)
        if (prng.chance(0.3)) bytes = bytes.subarray(0, prng.int(bytes.length))
      }
      const r = decodeTransferItem(bytes)
      expect(typeof r.ok).toBe('boolean')
    }
  })
})
