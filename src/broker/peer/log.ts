/**
 * Logging for the peer transport: the subset of a pino logger it uses, and a throttle for
 * lines that a hot path could otherwise repeat thousands of times a second (drops to a
 * stuck peer, a caller sending oversized payloads in a loop).
 *
 * Imports nothing.
 */

/** The subset of a pino logger the transport uses; every line is an object and a message. */
export interface PeerLog {
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
  error(obj: object, msg: string): void
  debug(obj: object, msg: string): void
}

/**
 * At most one line per key per `intervalMs`; the next line that does go out carries how
 * many were suppressed since the last one, so nothing is silently lost from the count.
 */
export class LogThrottle {
  readonly #intervalMs: number
  readonly #now: () => number
  readonly #last = new Map<string, { at: number; suppressed: number }>()

  constructor(intervalMs: number, now: () => number = () => performance.now()) {
    this.#intervalMs = intervalMs
    this.#now = now
  }

  /** Calls `emit` with the suppressed count if `key` is due (its last line is `intervalMs` old), else counts the line. */
  maybe(key: string, emit: (suppressed: number) => void, intervalMs = this.#intervalMs): void {
    const now = this.#now()
    const last = this.#last.get(key)
    if (last !== undefined && now - last.at < intervalMs) {
      last.suppressed++
      return
    }
    this.#last.set(key, { at: now, suppressed: 0 })
    emit(last?.suppressed ?? 0)
  }
}
