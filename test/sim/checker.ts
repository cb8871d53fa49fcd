/**
 * The simulator's safety checker. It watches every durable write, every apply and
 * every leader, and throws a Violation the moment Raft's guarantees break:
 *   - election safety: at most one leader per term;
 *   - log matching: one (index, term) never names two different entries, and two
 *     durable logs that agree on an entry agree on everything before it;
 *   - state machine safety: every node applies the same entry at each index, and a
 *     committed entry never changes or vanishes;
 *   - leader completeness: a new leader of the newest term holds every entry already
 *     applied anywhere;
 *   - exactly once: no proposal is applied twice by one node, and each node applies
 *     indexes in order without a gap or a repeat, across restarts (which resume from
 *     the restored state's index, possibly beyond the durable commit index) and
 *     snapshot installs;
 *   - restored state: a node restarts from a state (its surviving applied state or its
 *     snapshot) that is the applied history's at that index, and what it then holds as
 *     committed matches the committed entries.
 */
import type { NodeId, RaftNode, Entry } from '../../src/raft/index.js'
import { TERM_UNAVAILABLE } from '../../src/raft/index.js'
import type { MemoryStorage } from '../../src/raft/index.js'
import { HASH_SEED, entryKey } from './state-machine.js'

export class Violation extends Error {
  override name = 'Violation'
  readonly kind: string
  constructor(kind: string, message: string) {
    super(`${kind}: ${message}`)
    this.kind = kind
  }
}

/** What a run that threw records as its violation (a Violation, or a bug's error with its stack in the trace). */
export function violationOf(err: unknown, time: number, log: (line: () => string) => void): { kind: string; message: string; time: number } {
  const kind = err instanceof Violation ? err.kind : err instanceof Error ? err.name : 'error'
  const message = err instanceof Error ? err.message : String(err)
  log(() => `VIOLATION ${kind}: ${message}`)
  if (!(err instanceof Violation) && err instanceof Error && err.stack) log(() => err.stack!)
  return { kind, message, time }
}

const TERM_SPAN = 1 << 20

export class Checker {
  readonly #leaders = new Map<number, NodeId>()
  #newestLeaderTerm = 0
  /** (index, term) -> entry key, for every entry ever made durable anywhere. */
  readonly #entryKeys = new Map<number, number>()
  /** By index: the entry applied there (first applier decides, everyone else must agree). */
  readonly #committedTerm: number[] = [0]
  readonly #committedKey: number[] = [0]
  /** By index: the state machine hash after applying everything up to it. */
  readonly #prefixHash: number[] = [HASH_SEED]
  /** By node: the index its state machine is at. */
  readonly #appliedAt = new Map<NodeId, number>()
  maxCommitted = 0
  leadersSeen = 0

  /** An entry was made durable on `node`. */
  persisted(node: NodeId, e: Entry): void {
    if (e.term >= TERM_SPAN) throw new Violation('checker', `term ${e.term} too large for the checker's key`)
    const k = e.index * TERM_SPAN + e.term
    const key = entryKey(e)
    const had = this.#entryKeys.get(k)
    if (had === undefined) this.#entryKeys.set(k, key)
    else if (had !== key) {
      throw new Violation('log matching', `node ${node} persisted entry ${e.index}@t${e.term} = ${key}, but ${e.index}@t${e.term} = ${had} exists elsewhere`)
    }
  }

  /** `node` applied entry `e` (its state machine hash is now `hashAfter`). */
  applied(node: NodeId, e: Entry, hashAfter: number): void {
    const i = e.index
    const at = this.#appliedAt.get(node) ?? 0
    if (i !== at + 1) throw new Violation('exactly once', `node ${node} applied index ${i} while its state machine is at ${at}`)
    this.#appliedAt.set(node, i)
    const key = entryKey(e)
    if (i <= this.maxCommitted) {
      if (this.#committedTerm[i] !== e.term || this.#committedKey[i] !== key) {
        throw new Violation(
          'state machine safety',
          `node ${node} applied ${key}@t${e.term} at index ${i}, but ${this.#committedKey[i]}@t${this.#committedTerm[i]} was applied there before`,
        )
      }
      if (this.#prefixHash[i] !== hashAfter) {
        throw new Violation('state machine safety', `node ${node}'s state after index ${i} differs from the first applier's`)
      }
      return
    }
    if (i !== this.maxCommitted + 1) {
      throw new Violation('state machine safety', `node ${node} applied index ${i} while nothing is known applied at ${this.maxCommitted + 1}`)
    }
    this.#committedTerm.push(e.term)
    this.#committedKey.push(key)
    this.#prefixHash.push(hashAfter)
    this.maxCommitted = i
  }

  /** The state machine hash after everything applied up to `index` (undefined: nothing known applied there). */
  prefixHashAt(index: number): number | undefined {
    return this.#prefixHash[index]
  }

  /** `node` installed a snapshot at `index` whose state hashes to `hash`. */
  installedSnapshot(node: NodeId, index: number, hash: number): void {
    this.#appliedAt.set(node, index)
    if (index > this.maxCommitted) {
      throw new Violation('state machine safety', `node ${node} installed a snapshot at ${index}, beyond anything applied (${this.maxCommitted})`)
    }
    if (this.#prefixHash[index] !== hash) {
      throw new Violation('state machine safety', `node ${node} installed a snapshot at ${index} whose state differs from the applied history`)
    }
  }

  /** `node` (re)starts with its state machine at `index`, hashing to `hash`. */
  resumed(node: NodeId, index: number, hash: number): void {
    this.#appliedAt.set(node, index)
    if (index > this.maxCommitted) {
      throw new Violation('state machine safety', `node ${node} restarted from a state at ${index}, beyond anything applied (${this.maxCommitted})`)
    }
    if (this.#prefixHash[index] !== hash) {
      throw new Violation('state machine safety', `node ${node} restarted from a state at ${index} that differs from the applied history`)
    }
  }

  appliedTwice(node: NodeId, id: number): never {
    throw new Violation('exactly once', `node ${node} applied proposal ${id} twice`)
  }

  /** `node` is leader at `term`: check election safety and leader completeness. Returns whether the leader is new. */
  leader(node: RaftNode): boolean {
    const term = node.term
    const had = this.#leaders.get(term)
    if (had !== undefined) {
      if (had !== node.id) throw new Violation('election safety', `nodes ${had} and ${node.id} are both leader of term ${term}`)
      return false
    }
    this.#leaders.set(term, node.id)
    this.leadersSeen++
    // Raft promises completeness to leaders of later terms only: a vote answer that waited
    // out a pause can still make a leader of an old term after a newer one committed more
    // (it can commit nothing: a majority has moved on; state machine safety checks that)
    if (term < this.#newestLeaderTerm) return true
    this.#newestLeaderTerm = term
    if (node.lastIndex < this.maxCommitted) {
      throw new Violation('leader completeness', `leader ${node.id} of term ${term} ends at ${node.lastIndex}, but index ${this.maxCommitted} was applied`)
    }
    for (let i = Math.max(1, node.firstIndex); i <= this.maxCommitted; i++) {
      if (node.logTerm(i) !== this.#committedTerm[i]) {
        throw new Violation('leader completeness', `leader ${node.id} of term ${term} has t${node.logTerm(i)} at index ${i}, but t${this.#committedTerm[i]} was applied there`)
      }
    }
    return true
  }

  /** Durable logs agree on every index they share up to the last one whose terms match. */
  logsMatch(a: NodeId, sa: MemoryStorage, b: NodeId, sb: MemoryStorage): void {
    const lo = Math.max(sa.firstIndex(), sb.firstIndex())
    let hi = Math.min(sa.lastIndex(), sb.lastIndex())
    while (hi >= lo && sa.term(hi) !== sb.term(hi)) hi--
    for (let i = hi; i >= lo; i--) {
      const ta = sa.term(i)
      if (ta === TERM_UNAVAILABLE || ta !== sb.term(i)) {
        throw new Violation('log matching', `nodes ${a} and ${b} agree at index ${hi} but differ at ${i} (t${ta} vs t${sb.term(i)})`)
      }
    }
  }

  /** Entries up to a node's durable commit index (or `commit`, what it holds committed after a restart) are the committed ones. */
  committedDurable(node: NodeId, s: MemoryStorage, commit = s.hardState().commit): void {
    if (commit > s.lastIndex()) throw new Violation('durability', `node ${node} has commit ${commit} beyond its last durable entry ${s.lastIndex()}`)
    const hi = Math.min(commit, this.maxCommitted)
    for (let i = s.firstIndex(); i <= hi; i++) {
      if (s.term(i) !== this.#committedTerm[i]) {
        throw new Violation('state machine safety', `node ${node} holds t${s.term(i)} at committed index ${i}, but t${this.#committedTerm[i]} was applied there`)
      }
    }
  }
}
