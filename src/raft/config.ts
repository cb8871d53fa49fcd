/**
 * Membership change, one server at a time (Raft dissertation §4.1–4.3).
 *
 * Rule: a node's configuration is the latest ConfChange entry in its log, committed or
 * not (falling back to the snapshot's configuration). A truncated ConfChange entry takes
 * its configuration with it. A node not in its own configuration does not campaign.
 *
 * Safety argument. Two configurations differing by one voter have overlapping
 * majorities: with C_old of n voters and C_new = C_old ± s, any majority of C_old and any
 * majority of C_new share at least one voter, so they cannot elect two leaders in one
 * term nor commit two different entries at one index. The danger is a third
 * configuration in play at the same time (C_old, C_new and C_newer, whose majorities
 * need not overlap). The leader therefore proposes a change only when
 *   (a) no ConfChange entry in its log is uncommitted (so at most two configurations —
 *       the last committed one and the one being added — exist in any log), and
 *   (b) it has committed an entry of its own term (Ongaro's 2015 correction: without it,
 *       a new leader could add C_newer while a conflicting uncommitted C_new from an
 *       older term survives on other nodes, and the two can elect disjoint leaders).
 * Once C_new is committed, a majority of C_new holds it, so any future leader (which
 * needs votes from a C_new majority, §5.4.1 up-to-date check) has it in its log: C_old
 * can never again form a quorum on its own. A leader that removes itself keeps leading
 * (without counting itself) until C_new commits, then steps down.
 *
 * A ConfChange entry carries the whole configuration it yields, not only the change:
 * a node added to a running cluster starts with no configuration at all and learns it
 * from the first ConfChange entry (or snapshot) it receives, whatever came before.
 * Encoding: byte 0 the operation, bytes 1–4 the node id, bytes 5–6 the voter count,
 * then each voter (all integers big-endian).
 *
 * Imports ./types only.
 */
import type { ConfState, NodeId } from './types.js'

export const ConfChangeOp = {
  AddVoter: 1,
  RemoveVoter: 2,
} as const
export type ConfChangeOp = (typeof ConfChangeOp)[keyof typeof ConfChangeOp]

export interface ConfChange {
  readonly op: ConfChangeOp
  readonly nodeId: NodeId
}

/** A change together with the configuration it yields, as stored in the log. */
export interface ConfChangeEntry extends ConfChange {
  readonly conf: ConfState
}

export function encodeConfChange(cc: ConfChange, conf: ConfState): Uint8Array {
  const n = conf.voters.length
  const out = new Uint8Array(7 + 4 * n)
  const v = new DataView(out.buffer)
  out[0] = cc.op
  v.setUint32(1, cc.nodeId, false)
  v.setUint16(5, n, false)
  for (let i = 0; i < n; i++) v.setUint32(7 + 4 * i, conf.voters[i]!, false)
  return out
}

/** Null when the bytes are not a ConfChange entry (a bug: only the leader writes them). */
export function decodeConfChange(data: Uint8Array): ConfChangeEntry | null {
  if (data.byteLength < 7) return null
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength)
  const op = data[0]
  if (op !== ConfChangeOp.AddVoter && op !== ConfChangeOp.RemoveVoter) return null
  const nodeId = v.getUint32(1, false)
  const n = v.getUint16(5, false)
  if (nodeId === 0 || data.byteLength !== 7 + 4 * n) return null
  const voters: NodeId[] = []
  for (let i = 0; i < n; i++) voters.push(v.getUint32(7 + 4 * i, false))
  return { op, nodeId, conf: { voters } }
}

/** Why a change cannot apply to `conf`, or null if it can. */
export function checkConfChange(conf: ConfState, cc: ConfChange): string | null {
  const has = conf.voters.includes(cc.nodeId)
  if (cc.op === ConfChangeOp.AddVoter && has) return `node ${cc.nodeId} is already a voter`
  if (cc.op === ConfChangeOp.RemoveVoter && !has) return `node ${cc.nodeId} is not a voter`
  if (cc.op === ConfChangeOp.RemoveVoter && conf.voters.length === 1) return 'cannot remove the last voter'
  return null
}

/** The configuration after `cc`; a change that does not apply leaves it as it is. */
export function applyConfChange(conf: ConfState, cc: ConfChange): ConfState {
  if (checkConfChange(conf, cc) !== null) return conf
  const voters =
    cc.op === ConfChangeOp.AddVoter
      ? [...conf.voters, cc.nodeId].sort((a, b) => a - b)
      : conf.voters.filter((v) => v !== cc.nodeId)
  return { voters }
}
