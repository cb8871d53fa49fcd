/**
 * The clock and timers of a hosted group and its partition service: the real ones in
 * production (`realClock`), the simulator's in test/sim, so a seed replays exactly.
 *
 * Imports nothing.
 */
export interface ReplicaClock {
  /** Milliseconds (wall clock in production; simulated time in the simulator). */
  now(): number
  /** Runs `fn` after `ms`; the returned function cancels it. `keepAlive`: the timer holds the process open (default: it does not). */
  after(ms: number, fn: () => void, keepAlive?: boolean): () => void
}

export const realClock: ReplicaClock = {
  now: () => Date.now(),
  after: (ms, fn, keepAlive = false) => {
    const t = setTimeout(fn, ms)
    if (!keepAlive) t.unref()
    return () => clearTimeout(t)
  },
}
