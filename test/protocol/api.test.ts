import { describe, expect, it } from 'vitest'
import {
  CONNECTION_ERROR_ID,
  PROTOCOL_VERSION_MAX,
  PROTOCOL_VERSION_MIN,
  apiNames,
  apiVersions,
  negotiateVersion,
  okResponse,
  parseRequest,
  parseResponse,
  produceResults,
  rejectionResponse,
  requestErrorToWire,
  responseId,
  validateRequest,
  validateResponse,
  wireLimits,
} from '../../src/protocol/api.js'
import type { ApiName, ProduceRequest, RequestBody, RequestValidation, ResponseBody } from '../../src/protocol/api.js'
import { decodeMessage, encodeMessage, encodeMessageFrame } from '../../src/protocol/codec.js'
import { notLeader, offsetOutOfRange, wireError } from '../../src/protocol/errors.js'
import { FrameDecoder } from '../../src/protocol/frame.js'

type Path = (string | number)[]

const batch = (n: number): Uint8Array => new Uint8Array(n).map((_, i) => i & 0xff)

/** One valid request body per API, and which of its fields are optional or nullable. */
const requests: { readonly [A in ApiName]: { body: RequestBody<A>; optional?: string[]; nullable?: string[] } } = {
  hello: { body: { clientId: 'test-client', versionMin: 1, versionMax: 3 } },
  metadata: { body: { topics: ['orders', 'a.b_c-9'] }, optional: ['topics'] },
  createTopic: {
    body: { name: 'orders', partitions: 4, replicationFactor: 3, retentionMs: 86_400_000, retentionBytes: 1 << 30 },
    optional: ['retentionMs', 'retentionBytes'],
    nullable: ['retentionMs', 'retentionBytes'],
  },
  deleteTopic: { body: { name: 'orders' } },
  listTopics: { body: {} },
  describeTopic: { body: { name: 'orders' } },
  initProducerId: { body: {} },
  produce: {
    body: {
      timeoutMs: 5000,
      atomic: true,
      partitions: [
        { topic: 'orders', partition: 0, batch: batch(70) },
        { topic: 'orders', partition: 1, batch: batch(61) },
      ],
    },
    optional: ['atomic'],
  },
  fetch: {
    body: {
      maxWaitMs: 500,
      maxBytes: 1 << 20,
      partitions: [{ topic: 'orders', partition: 2, offset: 1234, maxBytes: 65536, maxMessages: 100 }],
    },
    optional: ['partitions[0].maxBytes', 'partitions[0].maxMessages'],
  },
  listOffsets: {
    body: {
      partitions: [
        { topic: 'orders', partition: 0, spec: 'earliest' },
        { topic: 'orders', partition: 1, spec: 'latest' },
      ],
    },
  },
  describeCluster: { body: {} },
  electPreferredLeaders: { body: {} },
  movePartition: { body: { topic: 'orders', partition: 2, replicas: [3, 1] } },
  addNode: { body: { id: 4, host: '10.0.0.4', port: 7171 } },
  removeNode: { body: { id: 4 } },
  alterTopic: { body: { name: 'orders', retentionMs: 60000, retentionBytes: 1 << 20, partitions: 8 }, optional: ['retentionMs', 'retentionBytes', 'partitions'], nullable: ['retentionMs', 'retentionBytes'] },
}

/** One valid response body per API. */
const responses: { readonly [A in ApiName]: ResponseBody<A> } = {
  hello: { version: 1, nodeId: 1, server: 'raftmq 0.1.0', limits: { frameBytesMax: 1 << 26, messageBytesMax: 1 << 20, batchBytesMax: 1 << 24 } },
  metadata: {
    nodes: [{ id: 1, host: '127.0.0.1', port: 7070 }, { id: 2, host: 'b.example', port: 7071 }],
    topics: [
      { name: 'orders', partitions: [{ partition: 0, leader: 1, replicas: [1, 2] }, { partition: 1, leader: null, replicas: [2] }] },
      { name: 'missing', error: wireError('UNKNOWN_TOPIC', { topic: 'missing' }), partitions: [] },
    ],
  },
  createTopic: { name: 'orders', partitions: 4 },
  deleteTopic: {},
  listTopics: { topics: [{ name: 'orders', partitions: 4 }] },
  describeTopic: {
    name: 'orders',
    partitions: [{ partition: 0, leader: 1, logStartOffset: 0, highWatermark: 10 }],
    retentionMs: null,
    retentionBytes: 1000,
  },
  initProducerId: { producerId: 2 ** 40, producerEpoch: 3 },
  produce: {
    partitions: [
      { topic: 'orders', partition: 0, count: 3, baseOffset: 10, errors: [{ index: 1, error: wireError('MESSAGE_TOO_LARGE', { bytes: 2, limit: 1 }) }] },
      { topic: 'orders', partition: 1, error: notLeader('orders', 1, 2) },
      { topic: 'orders', partition: 2, count: 2, baseOffset: 4, duplicate: true },
    ],
  },
  fetch: {
    partitions: [
      { topic: 'orders', partition: 0, highWatermark: 20, logStartOffset: 0, batches: [batch(80), batch(90)] },
      { topic: 'orders', partition: 1, error: offsetOutOfRange(99, 0, 20), highWatermark: -1, logStartOffset: -1, batches: [] },
    ],
  },
  listOffsets: {
    partitions: [
      { topic: 'orders', partition: 0, offset: 0 },
      { topic: 'orders', partition: 1, error: wireError('UNKNOWN_PARTITION', { topic: 'orders', partition: 1 }) },
    ],
  },
  describeCluster: {
    nodeId: 1,
    nodes: [
      { id: 1, host: '127.0.0.1', port: 7070, up: true },
      { id: 2, host: '127.0.0.1', port: 7071, up: false },
    ],
    controller: { leader: 1, voters: [1, 2] },
    groups: [
      { topic: 'orders', partition: 0, groupId: 1, role: 'leader', quiet: false, leader: 1, term: 3, commit: 40, applied: 40, lastIndex: 41, behind: false, snapshotBytes: 0, snapshotBytesTotal: 0, followers: [{ id: 2, match: 12, active: false }] },
      { topic: 'orders', partition: 1, groupId: 2, role: 'follower', quiet: true, leader: 0, term: 2, commit: 7, applied: 7, lastIndex: 7, behind: true, snapshotBytes: 4096, snapshotBytesTotal: 65536, followers: [] },
    ],
  },
  electPreferredLeaders: { started: 3 },
  movePartition: {},
  addNode: {},
  removeNode: {},
  alterTopic: { name: 'orders', partitions: 8, retentionMs: 60000, retentionBytes: null },
}

const envelope = (api: string, body: unknown, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  id: 7,
  api,
  version: 1,
  body,
  ...extra,
})

const fieldName = (path: Path): string =>
  path.reduce<string>((s, p) => (typeof p === 'number' ? `${s}[${p}]` : s === '' ? p : `${s}.${p}`), '')
const bodyField = (path: Path): string => path.reduce<string>((s, p) => (typeof p === 'number' ? `${s}[${p}]` : `${s}.${p}`), 'body')

function clone<T>(v: T): T {
  return structuredClone(v)
}

function setAt(root: unknown, path: Path, value: unknown): unknown {
  const copy = clone(root)
  let node = copy as Record<string | number, unknown>
  for (const step of path.slice(0, -1)) node = node[step] as Record<string | number, unknown>
  const last = path[path.length - 1]!
  if (value === DELETE) delete node[last]
  else node[last] = value
  return copy
}
const DELETE = Symbol('delete')

/** Every field of a sample: object keys, and the fields of an array's first item. */
function fieldPaths(value: unknown, path: Path = []): Path[] {
  const out: Path[] = []
  if (value instanceof Uint8Array) return out
  if (Array.isArray(value)) {
    if (value.length > 0) {
      out.push([...path, 0])
      out.push(...fieldPaths(value[0], [...path, 0]))
    }
  } else if (typeof value === 'object' && value !== null) {
    for (const [k, v] of Object.entries(value)) {
      out.push([...path, k])
      out.push(...fieldPaths(v, [...path, k]))
    }
  }
  return out
}

function objectPaths(value: unknown, path: Path = []): Path[] {
  if (value instanceof Uint8Array || typeof value !== 'object' || value === null) return []
  const out: Path[] = Array.isArray(value) ? [] : [path]
  const children = Array.isArray(value) ? (value.length ? [[0, value[0]] as const] : []) : Object.entries(value)
  for (const [k, v] of children) out.push(...objectPaths(v, [...path, k]))
  return out
}

/** Values of the wrong kind for a field whose sample value is `v`. */
function wrongValues(v: unknown): unknown[] {
  const common = [null, new Map(), new Date(0)]
  if (typeof v === 'string') return [...common, 1, true, [], {}, batch(2)]
  if (typeof v === 'number') return [...common, '1', true, [], {}, batch(2), 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 64, 10n]
  if (typeof v === 'boolean') return [...common, 1, 'true', [], {}]
  if (v instanceof Uint8Array) return [...common, 'abc', 1, [1, 2], {}, new Uint16Array(2)]
  if (Array.isArray(v)) return [...common, 'x', 1, {}, batch(2), new Set([1])]
  return [...common, 'x', 1, [], batch(2), true]
}

function expectRejected(r: RequestValidation, code: string, field: string | undefined): void {
  expect(r.ok, `expected ${code} at ${field}`).toBe(false)
  if (r.ok) return
  expect({ code: r.error.code, field: r.error.field }).toEqual({ code, field })
  if (field !== undefined) expect(r.error.message).toContain(field)
}

function through(value: unknown): unknown {
  const decoded = decodeMessage(encodeMessage(value))
  expect(decoded.ok).toBe(true)
  return decoded.ok ? decoded.value : undefined
}

/** Byte arrays compared by content, whatever their class (Buffer after decoding). */
function plain(v: unknown): unknown {
  if (v instanceof Uint8Array) return { bytes: [...v] }
  if (Array.isArray(v)) return v.map(plain)
  if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]))
  return v
}

describe('api - table', () => {
  it('lists every API of protocol version 1, each at version 1', () => {
    expect([...apiNames].sort()).toEqual(Object.keys(requests).sort())
    expect([PROTOCOL_VERSION_MIN, PROTOCOL_VERSION_MAX]).toEqual([1, 1])
    for (const api of apiNames) expect(apiVersions(api)).toEqual({ versionMin: 1, versionMax: 1 })
  })
})

describe('api - envelope', () => {
  it('refuses a message that is not a map, with no id to answer under', () => {
    for (const v of [null, undefined, 1, 'x', [], batch(3), new Map([['id', 1]]), new Date(0), true]) {
      const r = validateRequest(v)
      expectRejected(r, 'INVALID_REQUEST', undefined)
      if (!r.ok) expect(r.error.id).toBeUndefined()
    }
  })

  it('refuses a missing or bad id, with no id to answer under (id 0 is reserved)', () => {
    for (const id of [undefined, 0, -1, 1.5, 2 ** 32, '7', null, 10n, Number.NaN]) {
      const r = validateRequest(envelope('metadata', {}, { id }))
      expectRejected(r, 'INVALID_REQUEST', 'id')
      if (!r.ok) {
        expect(r.error.id).toBeUndefined()
        expect(rejectionResponse(r.error).id).toBe(CONNECTION_ERROR_ID)
      }
    }
    expect(validateRequest(envelope('metadata', {}, { id: 2 ** 32 - 1 })).ok).toBe(true)
    expect(validateRequest(envelope('metadata', {}, { id: 1 })).ok).toBe(true)
  })

  it('answers a bad api, version or body under the request id', () => {
    const cases: [Record<string, unknown>, string, string][] = [
      [envelope(7 as unknown as string, {}), 'INVALID_REQUEST', 'api'],
      [envelope('nope', {}), 'UNKNOWN_API', 'api'],
      [envelope('__proto__', {}), 'UNKNOWN_API', 'api'],
      [envelope('toString', {}), 'UNKNOWN_API', 'api'],
      [envelope('metadata', {}, { version: '1' }), 'INVALID_REQUEST', 'version'],
      [envelope('metadata', {}, { version: 1.5 }), 'INVALID_REQUEST', 'version'],
      [envelope('metadata', {}, { version: 2 }), 'UNSUPPORTED_VERSION', 'version'],
      [envelope('metadata', {}, { version: 0 }), 'UNSUPPORTED_VERSION', 'version'],
      [envelope('metadata', {}, { extra: 1 }), 'INVALID_REQUEST', 'extra'],
      [envelope('metadata', undefined), 'INVALID_REQUEST', 'body'],
      [envelope('metadata', []), 'INVALID_REQUEST', 'body'],
      [envelope('metadata', 'x'), 'INVALID_REQUEST', 'body'],
    ]
    for (const [env, code, field] of cases) {
      const r = validateRequest(env)
      expectRejected(r, code, field)
      if (!r.ok) {
        expect(r.error.id).toBe(7)
        expect(rejectionResponse(r.error)).toEqual({ id: 7, ok: false, error: { code, message: r.error.message, details: { field } } })
      }
    }
    const unknown = validateRequest(envelope('x'.repeat(10_000), {}))
    expect(!unknown.ok && unknown.error.message.length).toBeLessThan(100)
  })

  it('names the api it could read', () => {
    const r = validateRequest(envelope('fetch', {}))
    expect(!r.ok && r.error.api).toBe('fetch')
  })
})

describe('api - valid requests', () => {
  for (const api of apiNames) {
    it(`${api}: the sample validates and round-trips through encode, frame, decode and validate`, () => {
      const env = envelope(api, requests[api].body)
      const direct = validateRequest(env)
      expect(direct.ok).toBe(true)
      const back = validateRequest(through(env))
      expect(back.ok).toBe(true)
      if (back.ok) {
        expect(back.value.api).toBe(api)
        expect(plain(back.value)).toEqual(plain(env))
      }
      const framed = encodeMessageFrame(env)
      expect(framed.ok).toBe(true)
      const got: RequestValidation[] = []
      new FrameDecoder({ frame: (b) => void got.push(parseRequest(b)), error: () => {} }).push(framed.ok ? framed.value : new Uint8Array())
      expect(got.length).toBe(1)
      expect(got[0]!.ok && plain(got[0]!.value)).toEqual(plain(env))
    })
  }

  it('narrows the body by api (compile-time) and keeps batches as views of the frame', () => {
    const bytes = encodeMessage(envelope('produce', requests.produce.body))
    const r = parseRequest(bytes)
    expect(r.ok).toBe(true)
    if (r.ok && r.value.api === 'produce') {
      const body: ProduceRequest = r.value.body
      expect(body.partitions[0]!.batch.buffer).toBe(bytes.buffer)
    }
  })

  it('accepts optional fields absent, and nullable ones null', () => {
    for (const api of apiNames) {
      const { body, optional = [], nullable = [] } = requests[api]
      for (const field of optional) {
        const path = fieldPaths(body).find((p) => fieldName(p) === field)!
        expect(validateRequest(envelope(api, setAt(body, path, DELETE))).ok, `${api}.${field} absent`).toBe(true)
        expect(validateRequest(envelope(api, setAt(body, path, undefined))).ok, `${api}.${field} undefined`).toBe(true)
      }
      for (const field of nullable) {
        const path = fieldPaths(body).find((p) => fieldName(p) === field)!
        expect(validateRequest(envelope(api, setAt(body, path, null))).ok, `${api}.${field} null`).toBe(true)
      }
    }
  })
})

describe('api - invalid requests', () => {
  for (const api of apiNames) {
    it(`${api}: every field of the wrong kind is INVALID_REQUEST naming the field`, () => {
      const { body, nullable = [] } = requests[api]
      let checked = 0
      for (const path of fieldPaths(body)) {
        const original = path.reduce<unknown>((n, k) => (n as Record<string | number, unknown>)[k], body)
        for (const wrong of wrongValues(original)) {
          if (wrong === null && nullable.includes(fieldName(path))) continue
          expectRejected(validateRequest(envelope(api, setAt(body, path, wrong))), 'INVALID_REQUEST', `body.${fieldName(path)}`)
          checked++
        }
      }
      if (fieldPaths(body).length > 0) expect(checked).toBeGreaterThan(5)
    })

    it(`${api}: every missing required field and every unknown field is INVALID_REQUEST naming it`, () => {
      const { body, optional = [] } = requests[api]
      for (const path of fieldPaths(body)) {
        if (typeof path[path.length - 1] === 'number' || optional.includes(fieldName(path))) continue
        const r = validateRequest(envelope(api, setAt(body, path, DELETE)))
        expectRejected(r, 'INVALID_REQUEST', `body.${fieldName(path)}`)
        expect(!r.ok && r.error.message).toMatch(/is required$/)
      }
      for (const path of objectPaths(body)) {
        const r = validateRequest(envelope(api, setAt(body, [...path, 'zzz'], 1)))
        expectRejected(r, 'INVALID_REQUEST', bodyField([...path, 'zzz']))
        expect(!r.ok && r.error.message).toMatch(/is not a field of this message$/)
      }
    })
  }

  const rule = (api: ApiName, path: Path, value: unknown, code: string, message: RegExp): void => {
    const r = validateRequest(envelope(api, setAt(requests[api].body, path, value)))
    expectRejected(r, code, `body.${fieldName(path)}`)
    expect(!r.ok && r.error.message).toMatch(message)
  }

  it('refuses negative numbers, out-of-range numbers and non-integers', () => {
    rule('createTopic', ['partitions'], 0, 'INVALID_REQUEST', /must be at least 1 \(is 0\)/)
    rule('createTopic', ['partitions'], wireLimits.partitionsPerTopicMax + 1, 'INVALID_REQUEST', /must be at most 10000/)
    rule('createTopic', ['replicationFactor'], -1, 'INVALID_REQUEST', /must be at least 1/)
    rule('createTopic', ['retentionMs'], 0, 'INVALID_REQUEST', /must be at least 1/)
    rule('produce', ['timeoutMs'], -1, 'INVALID_REQUEST', /must not be negative \(is -1\)/)
    rule('produce', ['timeoutMs'], 300_001, 'INVALID_REQUEST', /must be at most 300000/)
    rule('produce', ['partitions', 1, 'partition'], -1, 'INVALID_REQUEST', /must not be negative/)
    rule('fetch', ['partitions', 0, 'offset'], -5, 'INVALID_REQUEST', /must not be negative/)
    rule('fetch', ['partitions', 0, 'offset'], 2 ** 53, 'INVALID_REQUEST', /must be at most 9007199254740991/)
    rule('fetch', ['partitions', 0, 'offset'], 0.5, 'INVALID_REQUEST', /must be an integer, not 0.5/)
    rule('fetch', ['maxWaitMs'], 30_001, 'INVALID_REQUEST', /must be at most 30000/)
    rule('fetch', ['maxBytes'], 0, 'INVALID_REQUEST', /must be at least 1/)
    rule('fetch', ['partitions', 0, 'maxMessages'], 0, 'INVALID_REQUEST', /must be at least 1/)
    rule('hello', ['versionMax'], 65_536, 'INVALID_REQUEST', /must be at most 65535/)
  })

  it('refuses strings and arrays over their limits', () => {
    rule('hello', ['clientId'], 'c'.repeat(257), 'INVALID_REQUEST', /at most 256 characters long \(is 257\)/)
    rule('metadata', ['topics'], Array(wireLimits.topicsPerRequestMax + 1).fill('t'), 'INVALID_REQUEST', /at most 100000 items/)
    const many = Array.from({ length: wireLimits.partitionsPerRequestMax + 1 }, (_, i) => ({ topic: 't', partition: i, batch: batch(1) }))
    rule('produce', ['partitions'], many, 'INVALID_REQUEST', /at most 10000 items \(has 10001\)/)
    rule('produce', ['partitions'], [], 'INVALID_REQUEST', /must not be empty/)
    rule('fetch', ['partitions'], [], 'INVALID_REQUEST', /must not be empty/)
    rule('listOffsets', ['partitions'], [], 'INVALID_REQUEST', /must not be empty/)
  })

  it('refuses a string that breaks the topic naming rule with INVALID_TOPIC', () => {
    for (const name of ['', '.', '..', 'a b', 'ü', 'x'.repeat(250), 'a/b', 'tab\t']) {
      rule('createTopic', ['name'], name, 'INVALID_TOPIC', /^invalid topic name: body\.name: /)
    }
    rule('produce', ['partitions', 0, 'topic'], 'no way', 'INVALID_TOPIC', /may contain only ASCII letters/)
    rule('metadata', ['topics', 1], '..', 'INVALID_TOPIC', /must not be "\.\."/)
    for (const name of ['.a', '..a', 'x'.repeat(249), 'A-Z_0.9']) {
      expect(validateRequest(envelope('createTopic', { ...requests.createTopic.body, name })).ok, name).toBe(true)
    }
  })

  it('refuses a spec other than earliest or latest', () => {
    rule('listOffsets', ['partitions', 0, 'spec'], 'newest', 'INVALID_REQUEST', /must be "earliest" or "latest"/)
  })

  it('refuses a hello whose version range is empty', () => {
    const r = validateRequest(envelope('hello', { clientId: '', versionMin: 3, versionMax: 2 }))
    expectRejected(r, 'INVALID_REQUEST', 'body')
    expect(!r.ok && r.error.message).toMatch(/versionMin 3 is above versionMax 2/)
  })

  it('refuses the same partition twice in one produce, fetch or listOffsets', () => {
    const dup = <T>(entries: readonly T[]): T[] => [...entries, entries[0]!]
    const produce = validateRequest(envelope('produce', { ...requests.produce.body, partitions: dup(requests.produce.body.partitions) }))
    expectRejected(produce, 'INVALID_REQUEST', 'body.partitions[2]')
    expect(!produce.ok && produce.error.message).toMatch(/repeats orders\/0$/)
    const fetch = validateRequest(envelope('fetch', { ...requests.fetch.body, partitions: dup(requests.fetch.body.partitions) }))
    expectRejected(fetch, 'INVALID_REQUEST', 'body.partitions[1]')
    const r = validateRequest(envelope('listOffsets', { partitions: dup(requests.listOffsets.body.partitions) }))
    expectRejected(r, 'INVALID_REQUEST', 'body.partitions[2]')
    // past 16 entries the check uses a set: same answer
    const many = Array.from({ length: 40 }, (_, i) => ({ topic: `t${i % 3}`, partition: i, spec: 'latest' as const }))
    expect(validateRequest(envelope('listOffsets', { partitions: many })).ok).toBe(true)
    const repeated = validateRequest(envelope('listOffsets', { partitions: [...many, many[25]!] }))
    expectRejected(repeated, 'INVALID_REQUEST', 'body.partitions[40]')
    expect(!repeated.ok && repeated.error.message).toMatch(/repeats t1\/25$/)
    // the same partition number in another topic is a different partition
    const other = [...requests.produce.body.partitions, { topic: 'other', partition: 0, batch: batch(3) }]
    expect(validateRequest(envelope('produce', { ...requests.produce.body, partitions: other })).ok).toBe(true)
  })

  it('refuses garbage that decodes to exotic values', () => {
    for (const bytes of [[0xc1], [0xd4, 0, 0], [0xd6, 0xff, 0, 0, 0, 0], [0x81, 0x01, 0x02]]) {
      const r = parseRequest(new Uint8Array(bytes))
      expect(r.ok).toBe(false)
      expect(!r.ok && r.error.id).toBeUndefined()
    }
    const notMsgpack = parseRequest(new Uint8Array([0x92, 1]))
    expect(!notMsgpack.ok && rejectionResponse(notMsgpack.error)).toMatchObject({ id: 0, ok: false, error: { code: 'INVALID_REQUEST' } })
  })

  it('requestErrorToWire carries the field in details', () => {
    const r = validateRequest(envelope('deleteTopic', { name: 1 }))
    expect(!r.ok && requestErrorToWire(r.error)).toEqual({
      code: 'INVALID_REQUEST',
      message: 'invalid request: body.name: must be a string, not a number',
      details: { field: 'body.name' },
    })
  })
})

describe('api - hello negotiation', () => {
  it('picks the highest common version, or UNSUPPORTED_VERSION', () => {
    expect(negotiateVersion(1, 5)).toEqual({ ok: true, value: 1 })
    expect(negotiateVersion(1, 1)).toEqual({ ok: true, value: 1 })
    expect(negotiateVersion(2, 4, 1, 3)).toEqual({ ok: true, value: 3 })
    const r = negotiateVersion(2, 3)
    expect(r.ok).toBe(false)
    expect(!r.ok && r.error).toEqual({
      code: 'UNSUPPORTED_VERSION',
      message: 'unsupported protocol version: the client speaks 2..3, this server 1..1',
    })
    expect(negotiateVersion(0, 0).ok).toBe(false)
  })
})

describe('api - responses', () => {
  for (const api of apiNames) {
    it(`${api}: the sample response validates after a round trip`, () => {
      const response = okResponse(9, api, responses[api])
      const r = validateResponse(through(response), api)
      expect(r.ok, r.ok ? '' : r.error.message).toBe(true)
      expect(plain(r.ok && r.value)).toEqual(plain(response))
    })
  }

  it('accepts an error response for any api, and only an error for an unknown request', () => {
    const err = { id: 0, ok: false, error: wireError('FRAME_TOO_LARGE', { bytes: 1, limit: 0 }) }
    expect(validateResponse(err, undefined).ok).toBe(true)
    expect(validateResponse({ ...err, id: 3 }, 'fetch').ok).toBe(true)
    const r = validateResponse({ id: 3, ok: true, body: {} }, undefined)
    expect(!r.ok && r.error).toMatchObject({ code: 'INVALID_RESPONSE', id: 3 })
  })

  it('refuses malformed responses with INVALID_RESPONSE, keeping a readable id', () => {
    const cases: [unknown, ApiName, number | undefined, RegExp][] = [
      ['x', 'hello', undefined, /must be a map/],
      [{ id: -1, ok: true, body: {} }, 'deleteTopic', undefined, /^invalid response: id: /],
      [{ id: 4, ok: 'yes', body: {} }, 'deleteTopic', 4, /ok: must be a boolean/],
      [{ id: 4, ok: true, body: {}, error: {} }, 'deleteTopic', 4, /"error" is not a field/],
      [{ id: 4, ok: false, error: { code: 'NOPE', message: '' } }, 'deleteTopic', 4, /error\.code: must be an error code/],
      [{ id: 4, ok: true, body: { name: 'orders' } }, 'createTopic', 4, /body\.partitions: is required/],
      [
        { id: 4, ok: true, body: { partitions: [{ topic: 't', partition: 0, offset: 1, error: wireError('TIMEOUT', { timeoutMs: 1 }) }] } },
        'listOffsets',
        4,
        /body\.partitions\[0\]: must have exactly one of offset and error/,
      ],
      [
        { id: 4, ok: true, body: { partitions: [{ topic: 't', partition: 0, count: 1, baseOffset: 1, duplicate: false }] } },
        'produce',
        4,
        /body\.partitions\[0\]\.duplicate: must be true/,
      ],
      ...(
        [
          [{ count: 2, baseOffset: 1, error: wireError('TIMEOUT', { timeoutMs: 1 }) }, /partitions\[0\]: an entry with a partition error carries no summary/],
          [{}, /partitions\[0\]: an entry needs an error or a record count/],
          [{ count: 2 }, /partitions\[0\]: baseOffset is required when a record was stored/],
          [{ count: 1, baseOffset: 3, errors: [{ index: 0, error: wireError('BATCH_REJECTED') }] }, /partitions\[0\]: baseOffset without a stored record/],
          [{ count: 1, duplicate: true, errors: [{ index: 0, error: wireError('BATCH_REJECTED') }] }, /partitions\[0\]: duplicate without a stored record/],
          [{ count: 2, baseOffset: 0, errors: [{ index: 2, error: wireError('BATCH_REJECTED') }] }, /partitions\[0\]\.errors\[0\]\.index: must be below the count 2/],
          [
            { count: 3, baseOffset: 0, errors: [{ index: 1, error: wireError('BATCH_REJECTED') }, { index: 1, error: wireError('BATCH_REJECTED') }] },
            /partitions\[0\]\.errors\[1\]\.index: must be ascending/,
          ],
        ] as const
      ).map(([fields, message]): [unknown, 'produce', number, RegExp] => [{ id: 4, ok: true, body: { partitions: [{ topic: 't', partition: 0, ...fields }] } }, 'produce', 4, message]),
    ]
    for (const [value, api, id, message] of cases) {
      const r = validateResponse(value, api)
      expect(r.ok).toBe(false)
      if (!r.ok) {
        expect(r.error.code).toBe('INVALID_RESPONSE')
        expect(r.error.id).toBe(id)
        expect(r.error.message).toMatch(message)
      }
    }
  })

  it('parseResponse finds the api by id and never throws on garbage', () => {
    const bytes = encodeMessage(okResponse(12, 'createTopic', responses.createTopic))
    const r = parseResponse(bytes, (id) => (id === 12 ? 'createTopic' : undefined))
    expect(r.ok && r.value).toEqual({ id: 12, ok: true, body: { name: 'orders', partitions: 4 } })
    expect(parseResponse(bytes, () => undefined).ok).toBe(false)
    const garbage = parseResponse(new Uint8Array([0x92]), () => 'hello')
    expect(!garbage.ok && garbage.error).toMatchObject({ code: 'INVALID_RESPONSE', id: undefined })
    expect(responseId({ id: 0 })).toBe(0)
    expect(responseId({ id: 1.5 })).toBeUndefined()
    expect(responseId([])).toBeUndefined()
  })
})

describe('api - produce summaries', () => {
  it('produceResults expands a summary into one result per record, refused ones in place', () => {
    const tooLarge = wireError('MESSAGE_TOO_LARGE', { bytes: 9, limit: 8 })
    expect(produceResults({ count: 3, baseOffset: 7 })).toEqual([{ offset: 7 }, { offset: 8 }, { offset: 9 }])
    expect(produceResults({ count: 2, baseOffset: 4, duplicate: true })).toEqual([
      { offset: 4, duplicate: true },
      { offset: 5, duplicate: true },
    ])
    // stored records take consecutive offsets around the refused ones
    expect(produceResults({ count: 5, baseOffset: 10, errors: [{ index: 0, error: tooLarge }, { index: 3, error: tooLarge }] })).toEqual([
      { error: tooLarge },
      { offset: 10 },
      { offset: 11 },
      { error: tooLarge },
      { offset: 12 },
    ])
    const rejected = wireError('BATCH_REJECTED')
    expect(produceResults({ count: 2, errors: [{ index: 0, error: tooLarge }, { index: 1, error: rejected }] })).toEqual([{ error: tooLarge }, { error: rejected }])
    expect(produceResults({ count: 0 })).toEqual([])
  })
})
