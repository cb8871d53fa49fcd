/**
 * The error table of raftmq: every expected failure a broker reports to a client has one
 * stable code from this table, a `retriable` flag and a human message template. The flag
 * is the client's whole retry policy (kafkajs's lesson): a retriable error is retried with
 * backoff after a metadata refresh, which idempotence makes safe; anything else reaches
 * the caller. Broker subsystems keep their own failure values and map them to these codes
 * in one place, at the edge.
 *
 *   wire error = { code: ErrorCode, message: string, leader?: i32, details?: map }
 *
 * `leader` is set only on NOT_LEADER, and only when this node knows who leads; `details`
 * carries machine-readable context (OFFSET_OUT_OF_RANGE: logStartOffset and highWatermark;
 * request errors: the offending `field`). Messages are for humans and may change; codes
 * may not. The code set belongs to protocol version 1: a server sends only codes of the
 * negotiated version, so a client may reject a response carrying any other code.
 *
 * Five codes are client-local and never sent by a broker: INVALID_RESPONSE,
 * CONNECTION_CLOSED, NOT_A_BROKER, INVALID_ARGUMENT and CLIENT_CLOSED. They live here so that the client's one error class has one table.
 *
 * Imports nothing.
 */

export const errorCodes = {
  // routing: the client's metadata is stale or an election is under way
  NOT_LEADER: { retriable: true, message: 'this node is not the leader of {topic}/{partition}' },
  LEADER_NOT_AVAILABLE: { retriable: true, message: '{topic}/{partition} has no leader at the moment' },

  // topics and partitions
  UNKNOWN_TOPIC: { retriable: false, message: 'topic {topic} does not exist' },
  UNKNOWN_PARTITION: { retriable: false, message: 'topic {topic} has no partition {partition}' },
  TOPIC_EXISTS: { retriable: false, message: 'topic {topic} already exists' },
  INVALID_TOPIC: { retriable: false, message: 'invalid topic name: {reason}' },
  INVALID_CONFIG: { retriable: false, message: 'invalid configuration: {reason}' },
  /** More replicas per partition than the cluster has live nodes: nothing was created. */
  INVALID_REPLICATION_FACTOR: { retriable: false, message: 'replication factor {replicationFactor} needs as many live nodes, and {live} are live' },
  /** A partition move names replicas that cannot hold it: nothing was recorded. */
  INVALID_REPLICAS: { retriable: false, message: 'cannot move {topic}/{partition} to [{replicas}]: {reason}' },
  /** A node cannot be added to or removed from the running cluster: nothing was recorded. */
  INVALID_NODE: { retriable: false, message: 'cannot {action} node {nodeId}: {reason}' },
  /** The metadata group (the controller) has no leader this node can reach: elections or a partition. */
  CONTROLLER_NOT_AVAILABLE: { retriable: true, message: 'the controller is not available: {reason}' },
  /** Creating the topic would take a node past its partition cap: nothing was created. */
  PARTITION_LIMIT: { retriable: false, message: 'this node would host {partitions} partitions, past its limit of {limit} (--max-partitions)' },

  // sizes: each names the limit it broke so the caller can split its input
  MESSAGE_TOO_LARGE: { retriable: false, message: 'a message of {bytes} bytes exceeds the limit of {limit} bytes' },
  BATCH_TOO_LARGE: { retriable: false, message: 'a batch of {bytes} bytes exceeds the limit of {limit} bytes' },
  FRAME_TOO_LARGE: { retriable: false, message: 'a frame of {bytes} bytes exceeds the limit of {limit} bytes' },

  // record batches
  CORRUPT_MESSAGE: { retriable: false, message: 'corrupt record batch: {reason}' },
  UNSUPPORTED_COMPRESSION: { retriable: false, message: 'unsupported compression: {codec}' },
  INVALID_RECORD: { retriable: false, message: 'invalid record: {reason}' },
  /** An atomic batch refused because another of its messages failed; nothing was written. */
  BATCH_REJECTED: { retriable: false, message: 'the atomic batch was rejected because another message in it failed' },

  // idempotent producers
  OUT_OF_ORDER_SEQUENCE: {
    retriable: false,
    message: 'producer {producerId}: sequence {sequence} is out of order (expected {expected})',
  },
  INVALID_PRODUCER_EPOCH: { retriable: false, message: 'producer {producerId}: epoch {epoch} is fenced or unknown' },
  UNKNOWN_PRODUCER: { retriable: false, message: 'producer {producerId} is unknown' },

  // reads
  OFFSET_OUT_OF_RANGE: {
    retriable: false,
    message: 'offset {offset} is outside the log [{logStartOffset}, {highWatermark}]',
  },

  // storage: a bad disk is bad input too (DESIGN §4 failure rules)
  /** Stored data failed its checks: reported, never served; retrying on this node cannot help. */
  STORAGE_CORRUPT: { retriable: false, message: 'stored data of {topic}/{partition} at offset {offset} is damaged: {reason}' },
  /** The disk is full: writes resume by themselves once space is freed. */
  STORAGE_FULL: { retriable: true, message: 'the disk of this node is full: {reason}' },
  /** A write failed (I/O error): the partition stopped taking writes until the node restarts on a sound disk. */
  STORAGE_FAILED: { retriable: false, message: 'the storage of {topic}/{partition} failed: {reason}' },

  // requests and sessions
  TIMEOUT: { retriable: true, message: 'timed out after {timeoutMs} ms' },
  INVALID_REQUEST: { retriable: false, message: 'invalid request: {reason}' },
  UNSUPPORTED_VERSION: { retriable: false, message: 'unsupported protocol version: {reason}' },
  UNKNOWN_API: { retriable: false, message: 'unknown api {api}' },
  HELLO_REQUIRED: { retriable: false, message: 'the first request on a connection must be hello' },
  TOO_MANY_REQUESTS: { retriable: true, message: 'too many requests in flight (the limit is {limit})' },
  SHUTTING_DOWN: { retriable: true, message: 'the node is shutting down' },
  INTERNAL: { retriable: false, message: 'internal error: {reason}' },

  // client-local: never sent on the wire
  INVALID_RESPONSE: { retriable: false, message: 'invalid response: {reason}' },
  /** In-flight requests of a connection that closed; safe to retry for idempotent producers. */
  CONNECTION_CLOSED: { retriable: true, message: 'the connection to {broker} closed' },
  /** What answered at a broker's address does not speak raftmq's protocol (an HTTP server, another service): a configuration mistake, not retried. */
  NOT_A_BROKER: { retriable: false, message: 'the server at {broker} is not a raftmq broker: {reason}' },
  /** The application called the client with a value it cannot send (a number as a message value, undefined): nothing was sent. */
  INVALID_ARGUMENT: { retriable: false, message: '{field}: {reason}' },
  /** The application closed the client: not retriable, so a producer's retries stop. */
  CLIENT_CLOSED: { retriable: false, message: 'the client is closed' },
} as const satisfies Record<string, { readonly retriable: boolean; readonly message: string }>

export type ErrorCode = keyof typeof errorCodes

export interface WireError {
  readonly code: ErrorCode
  readonly message: string
  /** NOT_LEADER only: the node this one believes leads, when it knows. */
  readonly leader?: number
  readonly details?: Readonly<Record<string, unknown>>
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(errorCodes, value)
}

export function isRetriable(code: ErrorCode): boolean {
  return errorCodes[code].retriable
}

/** The `{name}` placeholders of a message template, as a union of names. */
type Placeholders<S extends string> = S extends `${string}{${infer Name}}${infer Rest}` ? Name | Placeholders<Rest> : never

type TemplateOf<C extends ErrorCode> = (typeof errorCodes)[C]['message']

/** The values a code's template needs: exactly its placeholders, checked at compile time. */
export type MessageParams<C extends ErrorCode> = { readonly [K in Placeholders<TemplateOf<C>>]: string | number }

export interface WireErrorExtra {
  readonly leader?: number
  readonly details?: Readonly<Record<string, unknown>>
}

type ParamArgs<C extends ErrorCode> = [Placeholders<TemplateOf<C>>] extends [never]
  ? [params?: MessageParams<C>, extra?: WireErrorExtra]
  : [params: MessageParams<C>, extra?: WireErrorExtra]

/** Fills a template; a placeholder without a value (only possible from untyped callers) reads `?`. */
export function formatMessage(code: ErrorCode, params: Readonly<Record<string, string | number>> = {}): string {
  return errorCodes[code].message.replace(/\{(\w+)\}/g, (_, name: string) =>
    Object.hasOwn(params, name) ? String(params[name]) : '?',
  )
}

/** Builds the wire error for `code`, its message filled from `params`. */
export function wireError<C extends ErrorCode>(code: C, ...[params, extra]: ParamArgs<C>): WireError {
  const message = formatMessage(code, params as Readonly<Record<string, string | number>> | undefined)
  const error: { code: C; message: string; leader?: number; details?: Readonly<Record<string, unknown>> } = {
    code,
    message,
  }
  if (extra?.leader !== undefined) error.leader = extra.leader
  if (extra?.details !== undefined) error.details = extra.details
  return error
}

/** NOT_LEADER with the leader hint the client uses to skip a metadata round trip. */
export function notLeader(topic: string, partition: number, leader: number | undefined): WireError {
  return wireError('NOT_LEADER', { topic, partition }, leader === undefined ? {} : { leader })
}

/** OFFSET_OUT_OF_RANGE with the bounds a consumer needs to reset its position. */
export function offsetOutOfRange(offset: number, logStartOffset: number, highWatermark: number): WireError {
  return wireError('OFFSET_OUT_OF_RANGE', { offset, logStartOffset, highWatermark }, { details: { logStartOffset, highWatermark } })
}
