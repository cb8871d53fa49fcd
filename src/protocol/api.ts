/**
 * The client protocol, version 1: envelopes, the table of APIs, and the validators that
 * turn a decoded message (`unknown`) into a typed request or a coded error. Shared by
 * the broker (validateRequest, parseRequest) and the client (validateResponse,
 * parseResponse); each API's body and its grammar live in apis/<api>.ts.
 *
 *   request  = { id: 1..2^32-1, api: string, version: u16, body: map }
 *   response = { id, ok: true, body: map } | { id, ok: false, error: wire error }
 *
 * Session rules (the broker enforces them; this module is stateless):
 * - The first request on a connection is `hello` (apis/hello.ts); the client waits for
 *   its answer, which fixes the version every later request carries. Any other request
 *   first is answered HELLO_REQUIRED and the connection closed; a second hello is
 *   INVALID_REQUEST. hello's own envelope version is always 1.
 * - Requests may be pipelined; responses carry the request's id and may come in any
 *   order. A client picks ids 1..2^32-1, unique among its requests in flight.
 * - Id 0 is reserved for the server's connection-level errors: a frame too large, bytes
 *   that are not msgpack, an envelope whose id cannot be read. The server answers those
 *   with `{ id: 0, ok: false, error }` and closes the connection, because it cannot tell
 *   which request failed; the client fails everything in flight on that connection.
 * - A request whose id can be read but which is otherwise wrong (UNKNOWN_API,
 *   UNSUPPORTED_VERSION, INVALID_REQUEST, INVALID_TOPIC) is answered with an error
 *   response under its id; the stream is still in step, so the connection stays open.
 * - Messages are closed shapes: a field the version does not define is INVALID_REQUEST.
 *   Errors name the offending field (`body.partitions[2].topic`) in the message and in
 *   `details.field`.
 *
 * Validation returns the decoded object itself, typed: byte fields stay views into the
 * frame (codec.ts), so a broker that keeps or transfers one copies it first.
 *
 * Imports base, codec.ts, errors.ts and src/protocol/apis.
 */
import type { Failure } from '../base/index.js'
import type { EmptyBody } from './apis/common.js'
import { wireError as wireErrorSchema } from './apis/common.js'
import { addNodeRequest, addNodeResponse, describeClusterRequest, describeClusterResponse, electPreferredLeadersRequest, electPreferredLeadersResponse, movePartitionRequest, movePartitionResponse, removeNodeRequest, removeNodeResponse } from './apis/cluster.js'
import type { AddNodeRequest, AddNodeResponse, DescribeClusterRequest, DescribeClusterResponse, ElectPreferredLeadersRequest, ElectPreferredLeadersResponse, MovePartitionRequest, MovePartitionResponse, RemoveNodeRequest, RemoveNodeResponse } from './apis/cluster.js'
import { fetchRequest, fetchResponse } from './apis/fetch.js'
import type { FetchRequest, FetchResponse } from './apis/fetch.js'
import { PROTOCOL_VERSION_MAX, PROTOCOL_VERSION_MIN, helloRequest, helloResponse } from './apis/hello.js'
import type { HelloRequest, HelloResponse } from './apis/hello.js'
import { listOffsetsRequest, listOffsetsResponse } from './apis/list-offsets.js'
import type { ListOffsetsRequest, ListOffsetsResponse } from './apis/list-offsets.js'
import { metadataRequest, metadataResponse } from './apis/metadata.js'
import type { MetadataRequest, MetadataResponse } from './apis/metadata.js'
import { produceRequest, produceResponse } from './apis/produce.js'
import type { ProduceRequest, ProduceResponse } from './apis/produce.js'
import { initProducerIdRequest, initProducerIdResponse } from './apis/producer-id.js'
import type { InitProducerIdRequest, InitProducerIdResponse } from './apis/producer-id.js'
import { describe, formatPath, isPlainObject } from './apis/schema.js'
import type { Issue, Schema } from './apis/schema.js'
import {
  alterTopicRequest,
  alterTopicResponse,
  createTopicRequest,
  createTopicResponse,
  deleteTopicRequest,
  deleteTopicResponse,
  describeTopicRequest,
  describeTopicResponse,
  listTopicsRequest,
  listTopicsResponse,
} from './apis/topics.js'
import type {
  AlterTopicRequest,
  AlterTopicResponse,
  CreateTopicRequest,
  CreateTopicResponse,
  DeleteTopicRequest,
  DeleteTopicResponse,
  DescribeTopicRequest,
  DescribeTopicResponse,
  ListTopicsRequest,
  ListTopicsResponse,
} from './apis/topics.js'
import { decodeMessage } from './codec.js'
import { formatMessage } from './errors.js'
import type { WireError } from './errors.js'

export { PROTOCOL_VERSION_MAX, PROTOCOL_VERSION_MIN, negotiateVersion } from './apis/hello.js'
export { wireLimits } from './apis/limits.js'
export { produceResults } from './apis/produce.js'
export { topicNameProblem } from './apis/schema.js'
export type * from './apis/cluster.js'
export type * from './apis/fetch.js'
export type * from './apis/hello.js'
export type * from './apis/list-offsets.js'
export type * from './apis/metadata.js'
export type * from './apis/produce.js'
export type * from './apis/producer-id.js'
export type * from './apis/topics.js'
export type { EmptyBody } from './apis/common.js'

/** Every API of protocol version 1: its request body and its response body. */
export interface Apis {
  hello: { request: HelloRequest; response: HelloResponse }
  metadata: { request: MetadataRequest; response: MetadataResponse }
  createTopic: { request: CreateTopicRequest; response: CreateTopicResponse }
  deleteTopic: { request: DeleteTopicRequest; response: DeleteTopicResponse }
  listTopics: { request: ListTopicsRequest; response: ListTopicsResponse }
  describeTopic: { request: DescribeTopicRequest; response: DescribeTopicResponse }
  initProducerId: { request: InitProducerIdRequest; response: InitProducerIdResponse }
  produce: { request: ProduceRequest; response: ProduceResponse }
  fetch: { request: FetchRequest; response: FetchResponse }
  listOffsets: { request: ListOffsetsRequest; response: ListOffsetsResponse }
  describeCluster: { request: DescribeClusterRequest; response: DescribeClusterResponse }
  electPreferredLeaders: { request: ElectPreferredLeadersRequest; response: ElectPreferredLeadersResponse }
  movePartition: { request: MovePartitionRequest; response: MovePartitionResponse }
  addNode: { request: AddNodeRequest; response: AddNodeResponse }
  removeNode: { request: RemoveNodeRequest; response: RemoveNodeResponse }
  alterTopic: { request: AlterTopicRequest; response: AlterTopicResponse }
}

export type ApiName = keyof Apis
export type RequestBody<A extends ApiName> = Apis[A]['request']
export type ResponseBody<A extends ApiName> = Apis[A]['response']

export interface RequestOf<A extends ApiName> {
  readonly id: number
  readonly api: A
  readonly version: number
  readonly body: RequestBody<A>
}

/** A validated request: a union discriminated by `api`, so `switch (r.api)` narrows `body`. */
export type Request = { [A in ApiName]: RequestOf<A> }[ApiName]

export interface OkResponse<A extends ApiName> {
  readonly id: number
  readonly ok: true
  readonly body: ResponseBody<A>
}

export interface ErrorResponse {
  readonly id: number
  readonly ok: false
  readonly error: WireError
}

export type ResponseOf<A extends ApiName> = OkResponse<A> | ErrorResponse
export type Response = { [A in ApiName]: OkResponse<A> }[ApiName] | ErrorResponse

/** The id of the server's connection-level errors, after which it closes the connection. */
export const CONNECTION_ERROR_ID = 0
export const REQUEST_ID_MAX = 0xffff_ffff

interface ApiSpec<A extends ApiName> {
  readonly versionMin: number
  readonly versionMax: number
  readonly request: Schema<RequestBody<A>>
  readonly response: Schema<ResponseBody<A>>
}

const v1 = { versionMin: PROTOCOL_VERSION_MIN, versionMax: PROTOCOL_VERSION_MAX }

const apiSpecs: { readonly [A in ApiName]: ApiSpec<A> } = {
  // frozen at 1 whatever PROTOCOL_VERSION_MAX becomes: see apis/hello.ts
  hello: { versionMin: 1, versionMax: 1, request: helloRequest, response: helloResponse },
  metadata: { ...v1, request: metadataRequest, response: metadataResponse },
  createTopic: { ...v1, request: createTopicRequest, response: createTopicResponse },
  deleteTopic: { ...v1, request: deleteTopicRequest, response: deleteTopicResponse },
  listTopics: { ...v1, request: listTopicsRequest, response: listTopicsResponse },
  describeTopic: { ...v1, request: describeTopicRequest, response: describeTopicResponse },
  initProducerId: { ...v1, request: initProducerIdRequest, response: initProducerIdResponse },
  produce: { ...v1, request: produceRequest, response: produceResponse },
  fetch: { ...v1, request: fetchRequest, response: fetchResponse },
  listOffsets: { ...v1, request: listOffsetsRequest, response: listOffsetsResponse },
  describeCluster: { ...v1, request: describeClusterRequest, response: describeClusterResponse },
  electPreferredLeaders: { ...v1, request: electPreferredLeadersRequest, response: electPreferredLeadersResponse },
  movePartition: { ...v1, request: movePartitionRequest, response: movePartitionResponse },
  addNode: { ...v1, request: addNodeRequest, response: addNodeResponse },
  removeNode: { ...v1, request: removeNodeRequest, response: removeNodeResponse },
  alterTopic: { ...v1, request: alterTopicRequest, response: alterTopicResponse },
}

/** A spec seen without its API's types: what the generic validators need. */
interface Checks {
  readonly versionMin: number
  readonly versionMax: number
  readonly request: Pick<Schema<unknown>, 'check'>
  readonly response: Pick<Schema<unknown>, 'check'>
}

function checksOf(api: ApiName): Checks {
  return apiSpecs[api]
}

export const apiNames: readonly ApiName[] = Object.freeze(Object.keys(apiSpecs) as ApiName[])

export function isApiName(value: unknown): value is ApiName {
  return typeof value === 'string' && Object.hasOwn(apiSpecs, value)
}

/** The envelope versions an API accepts. */
export function apiVersions(api: ApiName): { readonly versionMin: number; readonly versionMax: number } {
  const spec = apiSpecs[api]
  return { versionMin: spec.versionMin, versionMax: spec.versionMax }
}

// ---- requests (the broker's side) ----

export type RequestErrorCode = 'INVALID_REQUEST' | 'INVALID_TOPIC' | 'UNKNOWN_API' | 'UNSUPPORTED_VERSION'

export interface RequestError extends Failure<RequestErrorCode> {
  /** The request's id when it could be read: answer under it. Undefined: answer under id 0 and close. */
  readonly id: number | undefined
  /** The api when it could be read and is known. */
  readonly api: ApiName | undefined
  /** The offending field's path (`body.partitions[2].topic`), when one is to blame. */
  readonly field: string | undefined
}

export type RequestValidation =
  | { readonly ok: true; readonly value: Request }
  | { readonly ok: false; readonly error: RequestError }

const REQUEST_KEYS = new Set(['id', 'api', 'version', 'body'])

function reject(
  code: RequestErrorCode,
  reason: string,
  where: { id?: number; api?: ApiName; field?: string } = {},
): { readonly ok: false; readonly error: RequestError } {
  const message =
    code === 'UNKNOWN_API' ? formatMessage(code, { api: reason }) : formatMessage(code, { reason })
  return { ok: false, error: { code, message, id: where.id, api: where.api, field: where.field } }
}

function rejectIssue(bad: Issue, root: string, id: number, api: ApiName): { readonly ok: false; readonly error: RequestError } {
  const field = formatPath(root, bad.path)
  return reject(bad.code, `${field}: ${bad.reason}`, { id, api, field })
}

function isRequestId(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= REQUEST_ID_MAX
}

/** A short, safe rendering of a string from the wire for a message. */
function shown(value: string): string {
  return JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}…` : value)
}

/**
 * Checks a decoded request: the envelope first (so that a request with a readable id is
 * answered under it), then the body against its API's schema. Never throws.
 */
export function validateRequest(envelope: unknown): RequestValidation {
  if (!isPlainObject(envelope)) return reject('INVALID_REQUEST', `a request must be a map, not ${describe(envelope)}`)
  const id = envelope['id']
  if (!isRequestId(id)) {
    const is = id === 0 ? '0, which is reserved' : typeof id === 'number' ? String(id) : describe(id)
    return reject('INVALID_REQUEST', `id: must be an integer in 1..${REQUEST_ID_MAX}, not ${is}`, { field: 'id' })
  }
  const api = envelope['api']
  if (typeof api !== 'string') return reject('INVALID_REQUEST', `api: must be a string, not ${describe(api)}`, { id, field: 'api' })
  if (!isApiName(api)) return reject('UNKNOWN_API', shown(api), { id, field: 'api' })
  const version = envelope['version']
  if (typeof version !== 'number' || !Number.isInteger(version)) {
    return reject('INVALID_REQUEST', `version: must be an integer, not ${describe(version)}`, { id, api, field: 'version' })
  }
  const spec = checksOf(api)
  if (version < spec.versionMin || version > spec.versionMax) {
    const reason = `${api} supports versions ${spec.versionMin}..${spec.versionMax}, not ${version}`
    return reject('UNSUPPORTED_VERSION', reason, { id, api, field: 'version' })
  }
  for (const key in envelope) {
    if (!REQUEST_KEYS.has(key)) {
      return reject('INVALID_REQUEST', `${shown(key)} is not a field of a request envelope`, { id, api, field: key })
    }
  }
  const body = envelope['body']
  if (body === undefined) return reject('INVALID_REQUEST', 'body: is required', { id, api, field: 'body' })
  const bad = spec.request.check(body)
  if (bad !== undefined) return rejectIssue(bad, 'body', id, api)
  return { ok: true, value: envelope as unknown as Request }
}

/** A frame body to a validated request: decodeMessage then validateRequest. Never throws. */
export function parseRequest(frameBody: Uint8Array): RequestValidation {
  const decoded = decodeMessage(frameBody)
  if (!decoded.ok) return { ok: false, error: { ...decoded.error, id: undefined, api: undefined, field: undefined } }
  return validateRequest(decoded.value)
}

/** The wire error for a rejected request, with `details.field` when a field is to blame. */
export function requestErrorToWire(error: RequestError): WireError {
  return error.field === undefined
    ? { code: error.code, message: error.message }
    : { code: error.code, message: error.message, details: { field: error.field } }
}

/** The response a rejected request gets: under its id, or under id 0 (then close the connection). */
export function rejectionResponse(error: RequestError): ErrorResponse {
  return { id: error.id ?? CONNECTION_ERROR_ID, ok: false, error: requestErrorToWire(error) }
}

export function okResponse<A extends ApiName>(id: number, _api: A, body: ResponseBody<A>): OkResponse<A> {
  return { id, ok: true, body }
}

export function errorResponse(id: number, error: WireError): ErrorResponse {
  return { id, ok: false, error }
}

// ---- responses (the client's side) ----

export interface ResponseError extends Failure<'INVALID_RESPONSE'> {
  /** The response's id when it could be read: the request it answers failed. Undefined: close the connection. */
  readonly id: number | undefined
}

export type ResponseValidation<R> = { readonly ok: true; readonly value: R } | { readonly ok: false; readonly error: ResponseError }

function badResponse(reason: string, id?: number): { readonly ok: false; readonly error: ResponseError } {
  return { ok: false, error: { code: 'INVALID_RESPONSE', message: formatMessage('INVALID_RESPONSE', { reason }), id } }
}

/** The id of a decoded response, if it has a readable one (0 included), to find the request it answers. */
export function responseId(value: unknown): number | undefined {
  if (!isPlainObject(value)) return undefined
  const id = value['id']
  return typeof id === 'number' && Number.isInteger(id) && id >= 0 && id <= REQUEST_ID_MAX ? id : undefined
}

const OK_RESPONSE_KEYS = new Set(['id', 'ok', 'body'])
const ERROR_RESPONSE_KEYS = new Set(['id', 'ok', 'error'])

/**
 * Checks a decoded response to a request of `api`. For id 0 (a connection-level error)
 * or an id the client does not know, pass `api` undefined: only an error response is
 * then valid. Never throws.
 */
export function validateResponse<A extends ApiName>(value: unknown, api: A | undefined): ResponseValidation<ResponseOf<A>> {
  if (!isPlainObject(value)) return badResponse(`a response must be a map, not ${describe(value)}`)
  const id = responseId(value)
  if (id === undefined) return badResponse(`id: must be an integer in 0..${REQUEST_ID_MAX}, not ${describe(value['id'])}`)
  const ok = value['ok']
  if (typeof ok !== 'boolean') return badResponse(`ok: must be a boolean, not ${describe(ok)}`, id)
  const keys = ok ? OK_RESPONSE_KEYS : ERROR_RESPONSE_KEYS
  for (const key in value) {
    if (!keys.has(key)) return badResponse(`${shown(key)} is not a field of a response envelope`, id)
  }
  if (ok) {
    if (api === undefined) return badResponse(`a successful response under id ${id}, which no request in flight has`, id)
    const bad = checksOf(api).response.check(value['body'])
    if (bad !== undefined) return badResponse(`${formatPath('body', bad.path)}: ${bad.reason}`, id)
  } else {
    const bad = wireErrorSchema.check(value['error'])
    if (bad !== undefined) return badResponse(`${formatPath('error', bad.path)}: ${bad.reason}`, id)
  }
  return { ok: true, value: value as unknown as ResponseOf<A> }
}

/**
 * A frame body to a validated response, `apiOf` telling which API the request with that
 * id was (undefined for id 0 or an id not in flight). Never throws.
 */
export function parseResponse(frameBody: Uint8Array, apiOf: (id: number) => ApiName | undefined): ResponseValidation<Response> {
  const decoded = decodeMessage(frameBody)
  if (!decoded.ok) return badResponse(decoded.error.message.replace(/^invalid request: /, ''))
  const id = responseId(decoded.value)
  const result = validateResponse(decoded.value, id === undefined ? undefined : apiOf(id))
  return result as ResponseValidation<Response>
}

/** An empty body, typed, for the APIs that carry nothing. */
export const EMPTY_BODY: EmptyBody = Object.freeze({})
