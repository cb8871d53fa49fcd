/**
 * Majority arithmetic over a set of voters: the commit index a configuration has
 * reached, and the outcome of an election. Pure functions of their inputs.
 *
 * Imports ./types only.
 */
import type { NodeId } from './types.js'

export const VoteResult = {
  Pending: 'pending',
  Won: 'won',
  Lost: 'lost',
} as const
export type VoteResult = (typeof VoteResult)[keyof typeof VoteResult]

export function majority(n: number): number {
  return Math.floor(n / 2) + 1
}

/**
 * The largest index that a majority of `voters` have acknowledged (Figure 2: "a
 * majority of matchIndex[i] >= N"). An empty configuration has committed nothing new.
 */
export function committedIndex(voters: readonly NodeId[], matchOf: (id: NodeId) => number): number {
  const n = voters.length
  if (n === 0) return 0
  if (n === 1) return matchOf(voters[0]!)
  const matches = new Array<number>(n)
  for (let i = 0; i < n; i++) {
    const v = matchOf(voters[i]!)
    let j = i
    while (j > 0 && matches[j - 1]! < v) {
      matches[j] = matches[j - 1]!
      j--
    }
    matches[j] = v
  }
  return matches[majority(n) - 1]!
}

/** `votes` maps voter to granted (true) or rejected (false); absent means not yet answered. */
export function voteResult(voters: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  let granted = 0
  let rejected = 0
  for (const id of voters) {
    const v = votes.get(id)
    if (v === true) granted++
    else if (v === false) rejected++
  }
  const q = majority(voters.length)
  if (granted >= q) return VoteResult.Won
  if (voters.length - rejected < q) return VoteResult.Lost
  return VoteResult.Pending
}
