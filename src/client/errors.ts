/**
 * RaftmqError: the one error class the client throws. It carries the stable code from
 * the protocol's error table, whether a retry may succeed, the leader hint of a
 * NOT_LEADER, and the underlying cause.
 *
 * Imports protocol only.
 */
import { isErrorCode, isRetriable } from '../protocol/errors.js'
import type { ErrorCode, WireError } from '../protocol/errors.js'

export class RaftmqError extends Error {
  override name = 'RaftmqError'
  readonly code: ErrorCode
  readonly retriable: boolean
  readonly leader: number | undefined
  readonly details: Readonly<Record<string, unknown>> | undefined

  constructor(code: ErrorCode, message: string, opts: { leader?: number; details?: Readonly<Record<string, unknown>>; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause })
    this.code = code
    this.retriable = isRetriable(code)
    this.leader = opts.leader
    this.details = opts.details
  }

  static from(e: WireError | { code: string; message: string; leader?: number; details?: Readonly<Record<string, unknown>> }): RaftmqError {
    const code: ErrorCode = isErrorCode(e.code) ? e.code : 'INTERNAL'
    return new RaftmqError(code, e.message, { leader: e.leader, details: e.details })
  }
}
