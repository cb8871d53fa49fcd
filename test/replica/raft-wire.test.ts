import { pack } from 'msgpackr'
import { describe, expect, it } from 'vitest'
import { MessageType } from '../../src/raft/index.js'
import type { Message } from '../../src/raft/index.js'
import { RaftOutbox, decodeRaftBatch, encodeRaftBatch } from '../../src/replica/raft-wire.js'

const msg = (to: number, over: Partial<Message> = {}): Message => ({
  type: MessageType.App,
  from: 1,
  to,
  term: 3,
  logTerm: 2,
  index: 10,
  entries: [],
  commit: 9,
  reject: false,
  rejectHint: 0,
  snapshot: null,
  transfer: false,
  quiesce: false,
  ...over,
})

const entry = (index: number, bytes: number) => ({ term: 3, index, type: 0 as const, data: new Uint8Array(bytes).fill(index & 0xff) })

describe('raft wire', () => {
  it('round-trips every field of every message, entries and snapshots included', () => {
    const items = [
      [7, msg(2, { entries: [entry(11, 5), entry(12, 0)], reject: true, rejectHint: 4 })],
      [0, msg(3, { type: MessageType.Snap, snapshot: { metadata: { index: 40, term: 2, conf: { voters: [1, 2, 3] } }, data: new Uint8Array([1, 2, 3]) } })],
      [9, msg(2, { type: MessageType.Vote, transfer: true })],
      [4, msg(3, { type: MessageType.Heartbeat, quiesce: true })],
    ] as const
    const back = decodeRaftBatch(encodeRaftBatch(items))
    expect(back.ok).toBe(true)
    if (!back.ok) return
    expect(back.value.map(([g, m]) => [g, { ...m, entries: m.entries.map((e) => ({ ...e, data: [...e.data] })), snapshot: m.snapshot && { ...m.snapshot, data: [...m.snapshot.data] } }])).toEqual(
      items.map(([g, m]) => [g, { ...m, entries: m.entries.map((e) => ({ ...e, data: [...e.data] })), snapshot: m.snapshot && { ...m.snapshot, data: [...m.snapshot.data] } }]),
    )
  })

  it('refuses bytes of another shape as a whole', () => {
    for (const bad of [new Uint8Array([0xc1]), encodeRaftBatch([]).subarray(0, 0), new Uint8Array([0x91, 0x92, 0x01, 0x02])]) {
      const r = decodeRaftBatch(bad)
      expect(r.ok).toBe(false)
    }
    const good = encodeRaftBatch([[1, msg(2)]])
    expect(decodeRaftBatch(good).ok).toBe(true)
    const quiesceNotBoolean = new Uint8Array(pack([[1, [7, 1, 2, 3, 0, 0, [], 0, false, 0, null, false, 1]]]))
    expect(decodeRaftBatch(quiesceNotBoolean).ok).toBe(false)
  })

  it('takes a message of a node from before quiescence (12 fields) as one that does not ask for it', () => {
    const old = new Uint8Array(pack([[1, [7, 1, 2, 3, 0, 0, [], 5, false, 0, null, false]]]))
    const r = decodeRaftBatch(old)
    expect(r.ok && r.value[0]![1]).toMatchObject({ type: MessageType.Heartbeat, commit: 5, quiesce: false })
  })

  it('an outbox drains one buffer per node, split so none grows much past its budget, every message once and in order', () => {
    const out = new RaftOutbox()
    out.add(5, [msg(2, { entries: [entry(1, 600_000)] }), msg(3), msg(2, { entries: [entry(2, 600_000)] }), msg(2, { entries: [entry(3, 3_000_000)] }), msg(2)])
    expect(out.empty).toBe(false)
    const sent: Array<{ to: number; bytes: number; indexes: number[] }> = []
    out.drain((to, bytes) => {
      const d = decodeRaftBatch(bytes)
      if (!d.ok) throw new Error(d.error.message)
      sent.push({ to, bytes: bytes.length, indexes: d.value.map(([, m]) => m.entries[0]?.index ?? 0) })
    }, 1_000_000)
    expect(out.empty).toBe(true)
    // node 2: 600 KB | 600 KB | 3 MB alone (over the budget by itself) | the empty one after it
    expect(sent.filter((s) => s.to === 2).map((s) => s.indexes)).toEqual([[1], [2], [3], [0]])
    expect(sent.filter((s) => s.to === 3).map((s) => s.indexes)).toEqual([[0]])
    for (const s of sent) if (s.indexes.length > 1) expect(s.bytes).toBeLessThanOrEqual(1_000_000)
  })
})
