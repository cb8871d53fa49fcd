import { describe, expect, it } from 'vitest'
import {
  errorCodes,
  formatMessage,
  isErrorCode,
  isRetriable,
  notLeader,
  offsetOutOfRange,
  wireError,
} from '../../src/protocol/errors.js'
import type { ErrorCode } from '../../src/protocol/errors.js'

const required: readonly ErrorCode[] = [
  'NOT_LEADER', 'LEADER_NOT_AVAILABLE', 'UNKNOWN_TOPIC', 'UNKNOWN_PARTITION', 'TOPIC_EXISTS', 'INVALID_TOPIC',
  'INVALID_CONFIG', 'MESSAGE_TOO_LARGE', 'BATCH_TOO_LARGE', 'FRAME_TOO_LARGE', 'CORRUPT_MESSAGE',
  'UNSUPPORTED_COMPRESSION', 'INVALID_RECORD', 'OUT_OF_ORDER_SEQUENCE', 'INVALID_PRODUCER_EPOCH', 'UNKNOWN_PRODUCER',
  'BATCH_REJECTED', 'OFFSET_OUT_OF_RANGE', 'TIMEOUT', 'INVALID_REQUEST', 'UNSUPPORTED_VERSION', 'UNKNOWN_API',
  'HELLO_REQUIRED', 'TOO_MANY_REQUESTS', 'SHUTTING_DOWN', 'INTERNAL',
]

describe('errors - table', () => {
  // DESIGN §5: every error has a stable code and a human message
  it('has every code of the protocol, each with a message', () => {
    for (const code of required) {
      expect(isErrorCode(code), code).toBe(true)
      expect(errorCodes[code].message.length, code).toBeGreaterThan(10)
    }
  })

  // STYLE (kafkajs): the retriable flag is the client's retry policy
  it('marks exactly the transient conditions retriable', () => {
    const retriable = (Object.keys(errorCodes) as ErrorCode[]).filter(isRetriable).sort()
    expect(retriable).toEqual(
      ['CONNECTION_CLOSED', 'CONTROLLER_NOT_AVAILABLE', 'LEADER_NOT_AVAILABLE', 'NOT_LEADER', 'SHUTTING_DOWN', 'STORAGE_FULL', 'TIMEOUT', 'TOO_MANY_REQUESTS'].sort(),
    )
  })

  it('isErrorCode accepts only own codes', () => {
    expect(isErrorCode('TIMEOUT')).toBe(true)
    for (const v of ['timeout', '', 'toString', '__proto__', 'constructor', 1, null, undefined, {}]) {
      expect(isErrorCode(v), String(v)).toBe(false)
    }
  })

  it('templates use only {word} placeholders', () => {
    for (const [code, { message }] of Object.entries(errorCodes)) {
      const stripped = message.replace(/\{\w+\}/g, '')
      expect(/[{}]/.test(stripped), code).toBe(false)
    }
  })
})

describe('errors - messages', () => {
  it('wireError fills the template from params', () => {
    expect(wireError('UNKNOWN_TOPIC', { topic: 'orders' })).toEqual({ code: 'UNKNOWN_TOPIC', message: 'topic orders does not exist' })
    expect(wireError('MESSAGE_TOO_LARGE', { bytes: 2000000, limit: 1048576 }).message).toBe(
      'a message of 2000000 bytes exceeds the limit of 1048576 bytes',
    )
    expect(wireError('SHUTTING_DOWN')).toEqual({ code: 'SHUTTING_DOWN', message: 'the node is shutting down' })
    expect(wireError('INTERNAL', { reason: 'x' }, { details: { a: 1 } })).toEqual({
      code: 'INTERNAL',
      message: 'internal error: x',
      details: { a: 1 },
    })
  })

  it('formatMessage marks a missing parameter instead of failing', () => {
    expect(formatMessage('UNKNOWN_PARTITION', { topic: 't' })).toBe('topic t has no partition ?')
    expect(formatMessage('INTERNAL')).toBe('internal error: ?')
  })

  // DESIGN §5: NOT_LEADER carries a leader hint
  it('notLeader carries the leader hint only when known', () => {
    expect(notLeader('orders', 3, 2)).toEqual({ code: 'NOT_LEADER', message: 'this node is not the leader of orders/3', leader: 2 })
    expect(notLeader('orders', 3, undefined)).not.toHaveProperty('leader')
  })

  it('offsetOutOfRange carries the log bounds in details', () => {
    const e = offsetOutOfRange(50, 10, 40)
    expect(e.code).toBe('OFFSET_OUT_OF_RANGE')
    expect(e.details).toEqual({ logStartOffset: 10, highWatermark: 40 })
    expect(e.message).toBe('offset 50 is outside the log [10, 40]')
  })
})
