/**
 * Retries: the one schedule by which the producer, the consumer and admin retry a
 * partition request, and the loop that sends a single-partition request to its leader.
 *
 * A retriable failure waits `retryBackoffMs * 2^attempt`, at most BACKOFF_MAX_MS (or
 * retryBackoffMs, if that is longer), before the next attempt, except right after a NOT_LEADER whose hint moved the partition: the hint names
 * the leader, so the retry goes at once. Only one immediate retry in a row: two nodes that
 * each name the other (a stale follower) then cost backoff, not a busy loop.
 *
 * Imports protocol and ./ modules of the client.
 */
import type { WireError } from '../protocol/errors.js'
import type { Client } from './client.js'
import { RaftmqError } from './errors.js'

export interface RetryPolicy {
  /** Retries after the first attempt. */
  readonly retries: number
  readonly retryBackoffMs: number
}

/**
 * The backoff's growth stops here (Kafka's retry.backoff.max.ms is 1 s): a failover takes
 * one to two election timeouts, and a wait longer than this would only add to it once a
 * leader is back (bench/failover.ts measured 1 s of it); four tries a second per
 * partition cost a broker nothing.
 */
const BACKOFF_MAX_MS = 250

export class RetrySchedule {
  readonly #policy: RetryPolicy
  #retried = 0
  #immediate = false

  constructor(policy: RetryPolicy) {
    this.#policy = policy
  }

  /** The wait before the next attempt after a failure, or null when no retry is left. */
  next(hinted: boolean): number | null {
    if (this.#retried >= this.#policy.retries) return null
    const attempt = this.#retried++
    if (hinted && !this.#immediate) {
      this.#immediate = true
      return 0
    }
    this.#immediate = false
    const base = this.#policy.retryBackoffMs
    return Math.max(base, Math.min(BACKOFF_MAX_MS, base * 2 ** Math.min(attempt, 30)))
  }
}

export function asRaftmqError(err: unknown): RaftmqError {
  return err instanceof RaftmqError ? err : new RaftmqError('INTERNAL', err instanceof Error ? err.message : String(err), { cause: err })
}

/**
 * Sends one partition's request to its leader with `call`, re-routing and retrying
 * retriable failures (a NOT_LEADER entry, a lost connection, no leader yet) under
 * `policy`. Resolves with the partition's entry when it carries no error; throws the
 * entry's error, or the request's, as a RaftmqError otherwise.
 */
export async function atLeader<T extends { readonly error?: WireError }>(
  client: Client,
  topic: string,
  partition: number,
  policy: RetryPolicy,
  call: (node: number) => Promise<T>,
): Promise<T> {
  const schedule = new RetrySchedule(policy)
  for (;;) {
    let error: RaftmqError
    let answeredBy: number | undefined
    try {
      const node = await client.leaderFor(topic, partition)
      const entry = await call(node)
      if (!entry.error) return entry
      error = RaftmqError.from(entry.error)
      answeredBy = node
    } catch (err) {
      error = asRaftmqError(err)
    }
    const hinted = client.reroute(topic, partition, error, answeredBy)
    const waitMs = error.retriable ? schedule.next(hinted) : null
    if (waitMs === null) throw error
    if (waitMs > 0) await client.sleep(waitMs)
  }
}
