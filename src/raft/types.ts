/**
 * The Raft core's vocabulary: entries, messages, hard state, snapshots and the Ready
 * the host must act on. Plain readonly data, no behaviour.
 *
 * Imports nothing. Node ids are positive integers; 0 means "none".
 */

export type NodeId = number
export const NONE: NodeId = 0

export const EntryType = {
  /** An application command (or the empty entry a new leader appends). */
  Normal: 0,
  /** A single-server membership change; see config.ts for its encoding. */
  ConfChange: 1,
} as const
export type EntryType = (typeof EntryType)[keyof typeof EntryType]

export interface Entry {
  readonly term: number
  readonly index: number
  readonly type: EntryType
  readonly data: Uint8Array
}

/** The voters of a configuration, sorted ascending. */
export interface ConfState {
  readonly voters: readonly NodeId[]
}

export interface SnapshotMetadata {
  readonly index: number
  readonly term: number
  /** The configuration as of `index`. */
  readonly conf: ConfState
}

export interface Snapshot {
  readonly metadata: SnapshotMetadata
  readonly data: Uint8Array
}

/** What must be durable before a node answers for it (Raft paper, Figure 2). */
export interface HardState {
  readonly term: number
  readonly vote: NodeId
  /**
   * A durable copy of the commit index, which the paper keeps volatile. It may lag what
   * the host applied or snapshotted (a commit-only write is not synced, see
   * `Ready.mustSync`); on restart the core takes the largest of it, the snapshot index
   * and the host's applied index (RaftLog's header argues why).
   */
  readonly commit: number
}

export const MessageType = {
  /** AppendEntries (also carries the commit index). */
  App: 1,
  AppResp: 2,
  /** RequestVote. */
  Vote: 3,
  VoteResp: 4,
  /** Pre-vote (thesis §9.6): would you vote for me at term+1? Changes no term. */
  PreVote: 5,
  PreVoteResp: 6,
  Heartbeat: 7,
  HeartbeatResp: 8,
  /** InstallSnapshot. */
  Snap: 9,
  /** Leadership transfer (thesis §3.10): campaign now, skipping pre-vote. */
  TimeoutNow: 10,
} as const
export type MessageType = (typeof MessageType)[keyof typeof MessageType]

export const messageTypeName: Readonly<Record<MessageType, string>> = {
  1: 'App',
  2: 'AppResp',
  3: 'Vote',
  4: 'VoteResp',
  5: 'PreVote',
  6: 'PreVoteResp',
  7: 'Heartbeat',
  8: 'HeartbeatResp',
  9: 'Snap',
  10: 'TimeoutNow',
}

/**
 * One message between peers. Every message has every field (unused ones are zero or
 * empty) so that all messages share one shape.
 *
 * - App: `index`/`logTerm` locate the entry before `entries`; `commit` is the leader's.
 * - AppResp: `index` is the highest index known to match (accept) or the rejected
 *   probe index (reject), with `rejectHint`/`logTerm` for fast backtracking.
 * - Vote/PreVote: `index`/`logTerm` describe the candidate's last entry; `transfer`
 *   marks a campaign started by TimeoutNow, which may break a leader lease.
 * - Heartbeat: `commit` is min(leader commit, follower match); `quiesce` asks the
 *   follower to go quiet with the leader (RaftOptions.quiesce).
 * - HeartbeatResp: `commit` is the follower's commit index.
 */
export interface Message {
  readonly type: MessageType
  readonly from: NodeId
  readonly to: NodeId
  readonly term: number
  readonly logTerm: number
  readonly index: number
  readonly entries: readonly Entry[]
  readonly commit: number
  readonly reject: boolean
  readonly rejectHint: number
  readonly snapshot: Snapshot | null
  readonly transfer: boolean
  readonly quiesce: boolean
}

/** A Message under construction (the core fills in what its type needs before sending). */
export type MutableMessage = { -readonly [K in keyof Message]: Message[K] }

const NO_ENTRIES: readonly Entry[] = Object.freeze([]) as readonly Entry[]

/** A message of `type` with every other field zero or empty: the one place that lists them all. */
export function blankMessage(type: MessageType, from: NodeId, to: NodeId, term: number): MutableMessage {
  return { type, from, to, term, logTerm: 0, index: 0, entries: NO_ENTRIES, commit: 0, reject: false, rejectHint: 0, snapshot: null, transfer: false, quiesce: false }
}

export const Role = {
  Follower: 'follower',
  PreCandidate: 'pre-candidate',
  Candidate: 'candidate',
  Leader: 'leader',
} as const
export type Role = (typeof Role)[keyof typeof Role]

export interface SoftState {
  readonly leader: NodeId
  readonly role: Role
}

/**
 * What the host must do now. The contract, in order:
 * 1. `messages` may be sent at once, even before anything below is durable.
 * 2. Make `snapshot` (if any), then `entries` (which replace any stored suffix from
 *    their first index on), then `hardState` (if any) durable, with one sync.
 * 3. Only then send `messagesAfterPersist` (votes and acknowledgements promise
 *    durability), and apply `snapshot` then `committedEntries` to the state machine.
 * 4. Call `advance()`. Exactly one Ready is outstanding at a time; proposals and
 *    messages stepped meanwhile go into the next one (group commit). While it is
 *    outstanding, `RaftNode.takeMessages()` hands out what may be sent at once, so a
 *    leader keeps streaming appends during its own sync.
 */
export interface Ready {
  readonly softState: SoftState | null
  readonly hardState: HardState | null
  readonly snapshot: Snapshot | null
  readonly entries: readonly Entry[]
  readonly committedEntries: readonly Entry[]
  readonly messages: readonly Message[]
  readonly messagesAfterPersist: readonly Message[]
  /**
   * True when step 2 must be synced before step 3: there are entries, a snapshot, or a
   * new term or vote. A hard state whose only change is the commit index may be written
   * without a sync (a lost commit index is learned again from the leader or the log),
   * and the host may apply `committedEntries`, save its applied state and snapshot it
   * even though that write is later lost: restarting with an applied index or a
   * snapshot beyond the durable commit index is allowed (`RaftOptions.applied`), and
   * the first Ready after it writes the raised commit index.
   */
  readonly mustSync: boolean
}
