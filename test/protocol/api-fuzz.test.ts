import { describe, expect, it } from 'vitest'
import { Prng } from '../../src/base/index.js'
import { apiNames, okResponse, parseRequest, parseResponse, validateRequest, validateResponse } from '../../src/protocol/api.js'
import type { ApiName, RequestBody, RequestValidation, ResponseBody } from '../../src/protocol/api.js'
import { encodeMessage } from '../../src/protocol/codec.js'
import { wireError } from '../../src/protocol/errors.js'
import { FrameDecoder, encodeFrame } from '../../src/protocol/frame.js'
import type { WireError } from '../../src/protocol/errors.js'

const REQUEST_CODES = new Set(['INVALID_REQUEST', 'INVALID_TOPIC', 'UNKNOWN_API', 'UNSUPPORTED_VERSION'])
const TOPIC_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-'

function topic(p: Prng): string {
  let s = 't'
  for (let n = p.range(0, 12); n > 0; n--) s += TOPIC_CHARS[p.int(TOPIC_CHARS.length)]
  return s
}

function bytes(p: Prng, max: number): Uint8Array {
  const b = new Uint8Array(p.range(0, max))
  for (let i = 0; i < b.length; i++) b[i] = p.int(256)
  return b
}

/** Distinct (topic, partition) entries, as every multi-partition request requires. */
function partitions<T>(p: Prng, make: (topic: string, partition: number) => T): T[] {
  const t = topic(p)
  return Array.from({ length: p.range(1, 4) }, (_, i) => make(t, i))
}

/** A random valid body for each API: the fuzzer's seeds. */
const validBodies: { readonly [A in ApiName]: (p: Prng) => RequestBody<A> } = {
  hello: (p) => ({ clientId: topic(p), versionMin: 1, versionMax: p.range(1, 9) }),
  metadata: (p) => (p.chance(0.5) ? {} : { topics: Array.from({ length: p.range(0, 3) }, () => topic(p)) }),
  createTopic: (p) => ({
    name: topic(p),
    partitions: p.range(1, 64),
    replicationFactor: p.range(1, 5),
    ...(p.chance(0.5) ? { retentionMs: p.chance(0.3) ? null : p.range(1, 2 ** 31) } : {}),
    ...(p.chance(0.5) ? { retentionBytes: p.range(1, 2 ** 40) } : {}),
  }),
  deleteTopic: (p) => ({ name: topic(p) }),
  listTopics: () => ({}),
  describeTopic: (p) => ({ name: topic(p) }),
  initProducerId: () => ({}),
  produce: (p) => ({
    timeoutMs: p.range(0, 30_000),
    ...(p.chance(0.5) ? { atomic: p.chance(0.5) } : {}),
    partitions: partitions(p, (t, i) => ({ topic: t, partition: i, batch: bytes(p, 200) })),
  }),
  fetch: (p) => ({
    maxWaitMs: p.range(0, 30_000),
    maxBytes: p.range(1, 1 << 24),
    partitions: partitions(p, (t, i) => ({
      topic: t,
      partition: i,
      offset: p.range(0, 2 ** 40),
      ...(p.chance(0.5) ? { maxBytes: p.range(1, 1 << 20) } : {}),
      ...(p.chance(0.5) ? { maxMessages: p.range(1, 1000) } : {}),
    })),
  }),
  listOffsets: (p) => ({ partitions: partitions(p, (t, i) => ({ topic: t, partition: i, spec: p.pick(['earliest', 'latest'] as const) })) }),
  describeCluster: () => ({}),
  electPreferredLeaders: () => ({}),
  movePartition: (p) => ({ topic: p.pick(['a', 'orders']), partition: p.int(8), replicas: [1 + p.int(5)] }),
  addNode: (p) => ({ id: 1 + p.int(9), host: p.pick(['127.0.0.1', 'node-4.example']), port: 1 + p.int(65535) }),
  removeNode: (p) => ({ id: 1 + p.int(9) }),
  alterTopic: (p) => ({ name: p.pick(['a', 'orders']), ...(p.int(2) === 0 ? { retentionMs: p.pick([null, 1000]) } : {}), ...(p.int(2) === 0 ? { partitions: 1 + p.int(8) } : {}) }),
}

function validRequest(p: Prng, id: number): Record<string, unknown> {
  const api = p.pick(apiNames)
  return { id, api, version: 1, body: validBodies[api](p) }
}

function mutate(p: Prng, message: Uint8Array): Uint8Array {
  let m = Uint8Array.from(message)
  for (let n = p.range(1, 3); n > 0; n--) {
    const at = p.int(m.length + 1)
    switch (p.int(6)) {
      case 0: // overwrite a byte
        if (m.length > 0) m[Math.min(at, m.length - 1)] = p.int(256)
        break
      case 1: // flip a bit
        if (m.length > 0) m[Math.min(at, m.length - 1)]! ^= 1 << p.int(8)
        break
      case 2: // insert bytes
        m = Uint8Array.from([...m.subarray(0, at), ...bytes(p, 4), ...m.subarray(at)])
        break
      case 3: // delete bytes
        m = Uint8Array.from([...m.subarray(0, at), ...m.subarray(at + p.range(1, 4))])
        break
      case 4: // truncate
        m = m.slice(0, at)
        break
      default: // a msgpack type byte where data was: maps, arrays, strings, ints, extensions
        if (m.length > 0) m[Math.min(at, m.length - 1)] = p.pick([0x80, 0x81, 0x90, 0x91, 0xa1, 0xc0, 0xc2, 0xc3, 0xc4, 0xcb, 0xcf, 0xd3, 0xd4, 0xdc, 0xde, 0xff])
    }
  }
  return m
}

/** The only outcomes allowed: a request that validates again, or a coded error. */
function expectOutcome(r: RequestValidation): void {
  if (r.ok) {
    expect(apiNames).toContain(r.value.api)
    expect(r.value.id >= 1 && r.value.id <= 0xffff_ffff).toBe(true)
    expect(validateRequest(r.value).ok).toBe(true)
  } else {
    expect(REQUEST_CODES.has(r.error.code), r.error.code).toBe(true)
    expect(typeof r.error.message).toBe('string')
    expect(r.error.message.length).toBeGreaterThan(0)
    if (r.error.id !== undefined) expect(Number.isInteger(r.error.id) && r.error.id >= 1).toBe(true)
  }
}

function chunked(p: Prng, stream: Uint8Array, push: (c: Uint8Array) => void): void {
  let at = 0
  while (at < stream.length) {
    const n = p.chance(0.3) ? p.range(1, 3) : p.range(1, 400)
    push(stream.subarray(at, at + n))
    at += n
  }
}

describe('api - fuzz', () => {
  it('5,000 streams of mutated valid frames through decoder, codec and validator: a request or a coded error, never a throw', () => {
    const p = new Prng(0xfeed)
    const tally = { ok: 0, rejected: 0, frames: 0, tooLarge: 0 }
    for (let round = 0; round < 5000; round++) {
      const originals: Record<string, unknown>[] = []
      const mutated: boolean[] = []
      const parts: Uint8Array[] = []
      let prefixBroken = false
      for (let k = p.range(1, 5); k > 0; k--) {
        const request = validRequest(p, p.range(1, 2 ** 32 - 1))
        const body = encodeMessage(request)
        const mutate_ = p.chance(0.8)
        originals.push(request)
        mutated.push(mutate_)
        const frame = encodeFrame(mutate_ ? mutate(p, body) : body)
        if (p.chance(0.03)) {
          frame[p.int(4)] = p.int(256) // a broken length prefix: the stream falls out of step
          prefixBroken = true
        }
        parts.push(frame)
      }
      const got: RequestValidation[] = []
      const errors: WireError[] = []
      const decoder = new FrameDecoder(
        { frame: (b) => void got.push(parseRequest(b)), error: (e) => void errors.push(e) },
        { frameBytesMax: 1 << 16 },
      )
      chunked(p, Buffer.concat(parts), (c) => void decoder.push(c))
      for (const r of got) expectOutcome(r)
      tally.frames += got.length
      tally.ok += got.filter((r) => r.ok).length
      tally.rejected += got.filter((r) => !r.ok).length
      tally.tooLarge += errors.length
      for (const e of errors) expect(e.code).toBe('FRAME_TOO_LARGE')
      if (!prefixBroken) {
        // framing intact: one outcome per frame, and every unmutated frame is its request
        expect(got.length).toBe(originals.length)
        expect(errors).toEqual([])
        got.forEach((r, i) => {
          if (!mutated[i]) expect(r.ok && r.value.id).toBe(originals[i]!['id'])
        })
      }
    }
    // the mix is meaningful: many mutants still parse, many are refused, some prefixes overflow
    expect(tally.ok).toBeGreaterThan(2000)
    expect(tally.rejected).toBeGreaterThan(5000)
    expect(tally.tooLarge).toBeGreaterThan(50)
  })

  it('5,000 structural mutations of valid requests: a request or a coded error, never a throw', () => {
    const p = new Prng(42)
    const weird = (): unknown =>
      p.pick<() => unknown>([
        () => null,
        () => undefined,
        () => -1,
        () => -0,
        () => 1.5,
        () => Number.NaN,
        () => 2 ** 60,
        () => 7n,
        () => '',
        () => 'x'.repeat(p.range(0, 300)),
        () => '..',
        () => true,
        () => [],
        () => [weird()],
        () => ({}),
        () => ({ __proto__: { polluted: 1 } }),
        () => Object.create(null) as unknown,
        () => new Map(),
        () => new Set([1]),
        () => new Date(0),
        () => new Uint16Array(2),
        () => new Uint8Array(3),
        () => /re/,
        () => new Error('e'),
        () => 'earliest',
        () => p.range(0, 100),
      ])()
    let ok = 0
    for (let round = 0; round < 5000; round++) {
      const request = structuredClone(validRequest(p, p.range(1, 1000)))
      // pick a random node inside the request and replace, delete or add next to it
      const path: (string | number)[] = []
      let node: unknown = request
      while (typeof node === 'object' && node !== null && !(node instanceof Uint8Array) && p.chance(0.7)) {
        const keys = Array.isArray(node) ? node.map((_, i) => i) : Object.keys(node)
        if (keys.length === 0) break
        const key = p.pick<string | number>(keys)
        path.push(key)
        node = (node as Record<string | number, unknown>)[key]
      }
      if (path.length === 0) path.push(p.pick(['id', 'api', 'version', 'body', 'extra']))
      let parent = request as Record<string | number, unknown>
      for (const step of path.slice(0, -1)) parent = parent[step] as Record<string | number, unknown>
      const last = path[path.length - 1]!
      const action = p.int(3)
      if (action === 0) parent[last] = weird()
      else if (action === 1) delete parent[last]
      else parent[`k${p.int(3)}`] = weird()
      const r = validateRequest(request)
      expectOutcome(r)
      if (r.ok) ok++
    }
    expect(ok).toBeGreaterThan(100)
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined()
  })

  it('3,000 mutated responses through parseResponse never throw', () => {
    const p = new Prng(7)
    const error: WireError = wireError('NOT_LEADER', { topic: 't', partition: 0 }, { leader: 2 })
    const samples: { [A in ApiName]?: ResponseBody<A> } = {
      createTopic: { name: 'orders', partitions: 3 },
      produce: { partitions: [{ topic: 't', partition: 0, count: 3, baseOffset: 1, errors: [{ index: 2, error }] }, { topic: 't', partition: 1, error }] },
      fetch: { partitions: [{ topic: 't', partition: 0, highWatermark: 9, logStartOffset: 0, batches: [bytes(p, 100)] }] },
      listOffsets: { partitions: [{ topic: 't', partition: 0, offset: 5 }, { topic: 't', partition: 1, error }] },
    }
    const apis = Object.keys(samples) as ApiName[]
    let ok = 0
    for (let round = 0; round < 3000; round++) {
      const api = p.pick(apis)
      const value = p.chance(0.2) ? { id: 5, ok: false, error } : okResponse(5, api, samples[api] as never)
      expect(validateResponse(value, api).ok).toBe(true)
      const r = parseResponse(mutate(p, encodeMessage(value)), (id) => (id === 5 ? api : undefined))
      if (r.ok) ok++
      else {
        expect(r.error.code).toBe('INVALID_RESPONSE')
        expect(r.error.message.length).toBeGreaterThan(0)
      }
    }
    expect(ok).toBeGreaterThan(100)
  })
})
