import { describe, expect, it } from 'vitest'
import { ConfChangeOp, applyConfChange, decodeConfChange, encodeConfChange } from '../../src/raft/index.js'
import { checkConfChange } from '../../src/raft/config.js'

const add = (nodeId: number) => ({ op: ConfChangeOp.AddVoter, nodeId })
const remove = (nodeId: number) => ({ op: ConfChangeOp.RemoveVoter, nodeId })

describe('raft config - encoding', () => {
  // thesis §4.1: configurations travel as log entries
  it('decode(encode(change)) gives the change and the configuration it yields', () => {
    for (const [cc, conf] of [
      [add(4), { voters: [1, 2, 3, 4] }],
      [remove(2), { voters: [1, 3] }],
      [add(0xfffffffe), { voters: [1, 0xfffffffe] }],
    ] as const) {
      const d = decodeConfChange(encodeConfChange(cc, conf))
      expect(d).toMatchObject({ op: cc.op, nodeId: cc.nodeId })
      expect(d!.conf).toEqual(conf)
    }
  })

  // §4.1 (entries are read back from storage buffers, often views into larger ones)
  it('decodes from a view into a larger buffer', () => {
    const enc = encodeConfChange(add(7), { voters: [1, 7] })
    const big = new Uint8Array(enc.byteLength + 10)
    big.set(enc, 5)
    expect(decodeConfChange(big.subarray(5, 5 + enc.byteLength))).toMatchObject({ op: ConfChangeOp.AddVoter, nodeId: 7, conf: { voters: [1, 7] } })
  })

  // §4.1: only well-formed configuration entries may change the membership
  it('returns null for bytes that are not a ConfChange', () => {
    const good = encodeConfChange(add(4), { voters: [4] })
    expect(decodeConfChange(new Uint8Array(0))).toBeNull()
    expect(decodeConfChange(good.subarray(0, good.byteLength - 1))).toBeNull() // truncated
    const badOp = good.slice()
    badOp[0] = 9
    expect(decodeConfChange(badOp)).toBeNull()
    const zeroId = encodeConfChange({ op: ConfChangeOp.AddVoter, nodeId: 0 }, { voters: [] })
    expect(decodeConfChange(zeroId)).toBeNull()
    const longer = new Uint8Array(good.byteLength + 1)
    longer.set(good)
    expect(decodeConfChange(longer)).toBeNull()
  })
})

describe('raft config - applying', () => {
  // thesis §4.1: one server at a time
  it('adds and removes one voter, keeping the voters sorted', () => {
    expect(applyConfChange({ voters: [1, 3] }, add(2))).toEqual({ voters: [1, 2, 3] })
    expect(applyConfChange({ voters: [1, 2, 3] }, remove(2))).toEqual({ voters: [1, 3] })
    expect(applyConfChange({ voters: [] }, add(5))).toEqual({ voters: [5] })
  })

  // thesis §4.1: single-server changes only; never an empty configuration
  it('refuses changes that do not apply, leaving the configuration as it is', () => {
    const conf = { voters: [1, 2] }
    expect(checkConfChange(conf, add(2))).toMatch(/already/)
    expect(checkConfChange(conf, remove(3))).toMatch(/not a voter/)
    expect(checkConfChange({ voters: [1] }, remove(1))).toMatch(/last voter/)
    expect(checkConfChange(conf, add(3))).toBeNull()
    expect(applyConfChange(conf, add(2))).toBe(conf)
    expect(applyConfChange(conf, remove(3))).toBe(conf)
    expect(applyConfChange({ voters: [1] }, remove(1))).toEqual({ voters: [1] })
  })
})
