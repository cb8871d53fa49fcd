/**
 * Dialer: keeps one outgoing connection to one higher-id peer. It dials, and whenever the
 * connection fails or closes it dials again after an exponential backoff with jitter, so
 * a peer that is down for long costs a connection attempt every backoffMaxMs at most, and
 * a cluster restarting together does not dial in lockstep.
 *
 * Logging is by episode, not by attempt: the first failure of a run of failures is a
 * warning (a refusal, which is a configuration error, an error), the retries are debug
 * lines, and the first success after failures says how long the peer was unreachable.
 *
 * The dialer only schedules; the transport owns the sockets and links it creates
 * (`connect`) and reports back how each attempt ended (`onUp`, `onClosed`).
 *
 * Imports node:net and ./log, ./link (types).
 */
import { connect } from 'node:net'
import type { Socket } from 'node:net'
import type { LinkClose } from './link.js'
import type { PeerLog } from './log.js'

/**
 * The delay before retry number `attempt` (0-based): min·2^attempt capped at max, then
 * "equal jitter" (half fixed, half random) so retries spread out but never collapse to 0.
 */
export function backoffMs(attempt: number, minMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, minMs * 2 ** Math.min(attempt, 30))
  return ceiling / 2 + random() * (ceiling / 2)
}

export interface DialerOptions {
  readonly peer: number
  readonly address: { readonly host: string; readonly port: number }
  readonly backoffMinMs: number
  readonly backoffMaxMs: number
  readonly log: PeerLog
  /** Hands a new connecting socket to the transport, which wraps it in a dialing link. */
  readonly connect: (socket: Socket) => void
}

export class Dialer {
  readonly #o: DialerOptions
  #attempt = 0
  #failures = 0
  #failingSince = 0
  #timer: NodeJS.Timeout | undefined
  #stopped = false

  constructor(o: DialerOptions) {
    this.#o = o
  }

  /** Dials at once. */
  start(): void {
    this.#dial()
  }

  onUp(): void {
    if (this.#failures > 0) {
      this.#o.log.info(
        { peer: this.#o.peer, failedAttempts: this.#failures, unreachableMs: Math.round(performance.now() - this.#failingSince) },
        'peer reachable again',
      )
    }
    this.#failures = 0
    this.#attempt = 0
  }

  /** The current attempt's connection is gone (never up, or up and then lost): dial again later. */
  onClosed(close: LinkClose): void {
    if (this.#stopped) return
    if (close.wasUp) {
      // the peer was there a moment ago: try again soon, and count failures from here
      this.#attempt = 0
    } else {
      this.#failures++
      const fields = { peer: this.#o.peer, host: this.#o.address.host, port: this.#o.address.port, reason: close.reason }
      if (this.#failures === 1) {
        this.#failingSince = performance.now()
        if (close.refusal !== undefined) this.#o.log.error({ ...fields, code: close.refusal.code }, 'peer refused our connection; retrying with backoff')
        else this.#o.log.warn(fields, 'cannot reach peer; retrying with backoff')
      } else {
        this.#o.log.debug({ ...fields, attempt: this.#failures }, 'peer still unreachable')
      }
    }
    const delay = backoffMs(this.#attempt++, this.#o.backoffMinMs, this.#o.backoffMaxMs)
    this.#timer = setTimeout(() => this.#dial(), delay)
    this.#timer.unref()
  }

  stop(): void {
    this.#stopped = true
    clearTimeout(this.#timer)
    this.#timer = undefined
  }

  #dial(): void {
    this.#timer = undefined
    if (this.#stopped) return
    this.#o.connect(connect({ host: this.#o.address.host, port: this.#o.address.port }))
  }
}
