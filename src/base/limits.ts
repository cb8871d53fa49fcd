/**
 * The limits table: every queue, batch and loop in raftmq has a bound, and the
 * defaults live here, in one place, with the reason for each. Modules take these as
 * defaults for their options and enforce them where data enters.
 *
 * Imports nothing.
 */

export const limits = {
  raft: {
    /** Ticks without a leader before a follower campaigns (randomised up to 2x). */
    electionTicks: 10,
    /** Ticks between leader heartbeats. */
    heartbeatTicks: 1,
    /** AppendEntries messages in flight to one follower before the leader waits for acks. */
    inflightMsgsMax: 256,
    /** Entry bytes in one AppendEntries message (a large batch entry may exceed it alone). */
    appendBytesMax: 1 << 20,
    /** Entry bytes of committed entries handed to the host in one Ready. */
    applyBytesMax: 64 << 20,
    /** Entry bytes appended by the leader but not yet committed; past it proposals are refused. */
    uncommittedBytesMax: 256 << 20,
    /** Entries in one propose() call. */
    proposalEntriesMax: 100_000,
  },
} as const
