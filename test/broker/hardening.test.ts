/**
 * Protocol hardening (issue 3, item 7): a live in-process node is fed what a broken or
 * hostile client sends, over raw `node:net` sockets, and must answer every case with the
 * stable error the protocol documents (src/protocol/api.ts, DESIGN.md §5), close the
 * connection exactly where the stream can no longer be trusted, keep serving everyone
 * else, and never store anything a valid request did not ask it to.
 *
 * Part 1 covers named cases one by one. Part 2 is a seeded fuzz loop: valid request
 * frames are mutated (bit flips, truncations, splices, random lengths, random msgpack
 * values in fields, damaged record batches, random chunking), sent over many short-lived
 * connections while a well-behaved client produces and fetches, and each connection's
 * answers are checked against what the protocol says the server must do with exactly
 * those bytes. The seed is RAFTMQ_FUZZ_SEED (default fixed) and the time budget
 * RAFTMQ_FUZZ_MS (default 20 s); a failure prints both and the input that caused it.
 */
import { connect } from 'node:net'
import type { Socket } from 'node:net'
import { gzipSync } from 'node:zlib'
import { crc32c } from '@node-rs/crc32'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Prng, limits } from '../../src/base/index.js'
import type { RunningNode } from '../../src/broker/node.js'
import { Client } from '../../src/client/index.js'
import { negotiateVersion, parseRequest, produceResults, validateResponse } from '../../src/protocol/api.js'
import type { ApiName, Request } from '../../src/protocol/api.js'
import { decodeMessage, encodeMessage } from '../../src/protocol/codec.js'
import { FrameDecoder, encodeFrame } from '../../src/protocol/frame.js'
import { checkBatch, decodeRecordBatch, encodeRecordBatch } from '../../src/protocol/record-batch.js'
import type { RecordInput } from '../../src/protocol/record-batch.js'
import type { Compression } from '../../src/protocol/compression.js'
import { Cleanups, startTestNode, tempDir } from '../support/node.js'

const FRAME_MAX = limits.protocol.frameBytesMax
const enc = new TextEncoder()
const dec = new TextDecoder()

// ---------------------------------------------------------------------------------------
// A raw connection: bytes out, decoded responses in, no client library in between.

interface WireErr {
  code: string
  message: string
  details?: Record<string, unknown>
}

interface Resp {
  id: number
  ok: boolean
  body?: any
  error?: WireErr
}

class Raw {
  readonly socket: Socket
  /** Every decoded response, in arrival order (not yet validated against an API). */
  readonly received: unknown[] = []
  /** Frames from the server that were not msgpack or not framed within the limit. */
  readonly garbled: string[] = []
  closed = false
  #nextId = 1
  #listeners = new Set<() => void>()

  private constructor(socket: Socket) {
    this.socket = socket
    const decoder = new FrameDecoder(
      {
        frame: (body) => {
          const d = decodeMessage(body)
          if (d.ok) this.received.push(d.value)
          else this.garbled.push(d.error.message)
          this.#poke()
        },
        error: (e) => {
          this.garbled.push(e.message)
          this.#poke()
        },
      },
      { frameBytesMax: FRAME_MAX + 1024 },
    )
    socket.on('data', (chunk: Buffer) => decoder.push(chunk))
    socket.on('error', () => {})
    socket.on('close', () => {
      this.closed = true
      this.#poke()
    })
  }

  static open(port: number, timeoutMs = 5_000): Promise<Raw> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port })
      const timer = setTimeout(() => {
        socket.destroy()
        reject(new Error(`connect timed out after ${timeoutMs} ms`))
      }, timeoutMs)
      socket.once('error', (err) => {
        clearTimeout(timer)
        reject(err)
      })
      socket.once('connect', () => {
        clearTimeout(timer)
        socket.setNoDelay(true)
        resolve(new Raw(socket))
      })
    })
  }

  #poke(): void {
    for (const l of [...this.#listeners]) l()
  }

  /** Resolves true once `pred` holds, false after `timeoutMs`. */
  until(pred: () => boolean, timeoutMs: number): Promise<boolean> {
    if (pred()) return Promise.resolve(true)
    return new Promise((resolve) => {
      const check = (): void => {
        if (!pred()) return
        clearTimeout(timer)
        this.#listeners.delete(check)
        resolve(true)
      }
      const timer = setTimeout(() => {
        this.#listeners.delete(check)
        resolve(pred())
      }, timeoutMs)
      this.#listeners.add(check)
    })
  }

  send(bytes: Uint8Array): void {
    if (!this.socket.destroyed) this.socket.write(bytes)
  }

  /** Sends one request envelope (or any value) as a frame; returns its id when it has one. */
  frame(value: unknown): void {
    this.send(encodeFrame(encodeMessage(value)))
  }

  request(api: string, body: unknown, opts: { version?: number; id?: number } = {}): number {
    const id = opts.id ?? this.#nextId++
    this.frame({ id, api, version: 'version' in opts ? opts.version : 1, body })
    return id
  }

  responsesTo(id: number): Resp[] {
    return this.received.filter((r): r is Resp => typeof r === 'object' && r !== null && (r as Resp).id === id)
  }

  async response(id: number, timeoutMs = 5_000): Promise<Resp> {
    const got = await this.until(() => this.responsesTo(id).length > 0, timeoutMs)
    if (!got) throw new Error(`no response to request ${id} within ${timeoutMs} ms (closed: ${this.closed})`)
    return this.responsesTo(id)[0]!
  }

  async call(api: string, body: unknown, opts: { version?: number } = {}): Promise<Resp> {
    return this.response(this.request(api, body, opts))
  }

  async hello(): Promise<Resp> {
    const r = await this.call('hello', { clientId: 'hardening', versionMin: 1, versionMax: 1 })
    expect(r.ok, JSON.stringify(r)).toBe(true)
    return r
  }

  closedWithin(ms: number): Promise<boolean> {
    return this.until(() => this.closed, ms)
  }

  destroy(): void {
    this.socket.destroy()
  }
}

/** A u32 big-endian length prefix (and nothing else). */
function prefix(length: number): Uint8Array {
  const b = new Uint8Array(4)
  new DataView(b.buffer).setUint32(0, length)
  return b
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  return Buffer.concat(parts)
}

// ---------------------------------------------------------------------------------------
// Record batches and their damage.

function batchOf(values: readonly (string | Uint8Array | null)[], compression: Compression = 'none'): Uint8Array {
  const records: RecordInput[] = values.map((value) => ({ key: null, value, timestamp: 1_700_000_000_000 }))
  return encodeRecordBatch(records, { compression })
}

/** Recomputes a batch's batchLength and CRC-32C after its bytes were edited. */
function reseal(b: Uint8Array): Uint8Array {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength)
  v.setInt32(8, b.length - 12)
  v.setUint32(17, crc32c(b.subarray(21)))
  return b
}

/** The batch's header with `records` as its records section (compressed or not), resealed. */
function withRecords(batch: Uint8Array, records: Uint8Array): Uint8Array {
  return reseal(concat([batch.subarray(0, 61), records]))
}

// ---------------------------------------------------------------------------------------
// The node under test: one for the whole file.

let node: RunningNode
let port: number
let admin: Client

/**
 * Creates a topic and waits until each partition's group has elected its leader (a
 * produce just after createTopic may be answered NOT_LEADER, which clients retry; raw
 * tests do not). An empty batch probes without storing: NOT_LEADER or CORRUPT_MESSAGE.
 */
async function createTopic(name: string, partitions: number): Promise<void> {
  await admin.admin().createTopic({ name, partitions })
  for (let partition = 0; partition < partitions; partition++) {
    for (let tries = 0; ; tries++) {
      const r = await admin.request('produce', { timeoutMs: 1_000, partitions: [{ topic: name, partition, batch: new Uint8Array(0) }] })
      const code = r.partitions[0]!.error?.code
      if (code === 'CORRUPT_MESSAGE') break
      if (tries > 200) throw new Error(`${name}/${partition} has no leader: ${code}`)
      await new Promise((res) => setTimeout(res, 10))
    }
  }
}

/** Every stored record of a partition (raw fetch, then decoded: a batch that does not decode fails). */
async function readAll(client: Client, topic: string, partition: number): Promise<{ batches: Uint8Array[]; records: { offset: number; value: Uint8Array | null }[]; highWatermark: number }> {
  const batches: Uint8Array[] = []
  const records: { offset: number; value: Uint8Array | null }[] = []
  const earliest = await client.request('listOffsets', { partitions: [{ topic, partition, spec: 'earliest' }] })
  let offset = earliest.partitions[0]!.offset ?? 0
  let highWatermark = -1
  for (;;) {
    const r = await client.request('fetch', { maxWaitMs: 0, maxBytes: 8 << 20, partitions: [{ topic, partition, offset }] })
    const p = r.partitions[0]!
    if (p.error) throw new Error(`fetch ${topic}/${partition}@${offset}: ${p.error.code} ${p.error.message}`)
    highWatermark = p.highWatermark
    if (p.batches.length === 0) break
    for (const b of p.batches) {
      const d = decodeRecordBatch(b)
      if (!d.ok) throw new Error(`${topic}/${partition}: a stored batch does not decode: ${d.error.code} ${d.error.message}`)
      if (d.value.header.baseOffset !== offset && !(batches.length === 0 && d.value.header.baseOffset < offset)) throw new Error(`${topic}/${partition}: batch at ${d.value.header.baseOffset}, expected ${offset}`)
      batches.push(b)
      for (const rec of d.value.records) records.push({ offset: rec.offset, value: rec.value })
      offset = d.value.header.baseOffset + d.value.records.length
    }
    if (offset >= p.highWatermark) break
  }
  expect(offset, `${topic}/${partition}: records end at the high watermark`).toBe(highWatermark)
  return { batches, records, highWatermark }
}

async function highWatermark(topic: string, partition: number): Promise<number> {
  const r = await admin.request('listOffsets', { partitions: [{ topic, partition, spec: 'latest' }] })
  return r.partitions[0]!.offset!
}

const cleanups = new Cleanups()

beforeAll(async () => {
  node = await startTestNode(await tempDir(cleanups, 'raftmq-hardening-'))
  cleanups.add(() => node.stop())
  port = node.address.port
  admin = new Client({ brokers: [`127.0.0.1:${port}`] })
  cleanups.add(() => admin.close())
})

afterAll(() => cleanups.run())

/** The node still answers a fresh, well-behaved connection. */
async function stillServes(): Promise<void> {
  const c = await Raw.open(port)
  await c.hello()
  const r = await c.call('listTopics', {})
  expect(r.ok).toBe(true)
  c.destroy()
}

function expectConnectionError(r: Resp, code: string): void {
  expect(r.id).toBe(0)
  expect(r.ok).toBe(false)
  expect(r.error!.code).toBe(code)
  expect(typeof r.error!.message).toBe('string')
  expect(validateResponse(r, undefined).ok).toBe(true)
}

// ---------------------------------------------------------------------------------------
// Part 1: named cases.

describe('hardening - connection-level errors: id 0, then the connection is closed', () => {
  it('garbage bytes: an HTTP request line reads as an absurd length (FRAME_TOO_LARGE)', async () => {
    const c = await Raw.open(port)
    c.send(enc.encode('GET / HTTP/1.1\r\nHost: x\r\n\r\n'))
    const r = await c.response(0)
    expectConnectionError(r, 'FRAME_TOO_LARGE')
    expect(await c.closedWithin(2_000)).toBe(true)
    expect(c.received).toHaveLength(1)
    await stillServes()
  })

  it('garbage bytes inside a well-formed frame, before and after hello: INVALID_REQUEST', async () => {
    for (const greet of [false, true]) {
      const c = await Raw.open(port)
      if (greet) await c.hello()
      c.send(concat([prefix(6), new Uint8Array([0xc1, 0xc1, 0xff, 0x00, 0x13, 0x37])]))
      const r = await c.response(0)
      expectConnectionError(r, 'INVALID_REQUEST')
      expect(r.error!.message).toMatch(/msgpack/)
      expect(await c.closedWithin(2_000)).toBe(true)
    }
    await stillServes()
  })

  it('absurd length prefixes: 0xFFFFFFFF and one byte over the limit are FRAME_TOO_LARGE; the limit itself is read', async () => {
    for (const length of [0xffff_ffff, FRAME_MAX + 1, 0x8000_0000]) {
      const c = await Raw.open(port)
      const hello = await c.hello()
      expect(hello.body.limits.frameBytesMax).toBe(FRAME_MAX)
      c.send(concat([prefix(length), new Uint8Array(16)]))
      const r = await c.response(0)
      expectConnectionError(r, 'FRAME_TOO_LARGE')
      expect(r.error!.message).toContain(String(length))
      expect(r.error!.message).toContain(String(FRAME_MAX))
      expect(await c.closedWithin(2_000)).toBe(true)
    }
    // exactly the limit is a legal frame: the server waits for its body instead of refusing it
    const c = await Raw.open(port)
    await c.hello()
    c.send(concat([prefix(FRAME_MAX), new Uint8Array(1024)]))
    expect(await c.until(() => c.received.length > 1 || c.closed, 300)).toBe(false)
    c.destroy()
    await stillServes()
  })

  it('a truncated frame then close: nothing is answered, nothing is stored, the node keeps serving', async () => {
    await createTopic('trunc', 1)
    const c = await Raw.open(port)
    await c.hello()
    const frame = encodeFrame(encodeMessage({ id: 7, api: 'produce', version: 1, body: { timeoutMs: 5_000, partitions: [{ topic: 'trunc', partition: 0, batch: batchOf(['lost']) }] } }))
    c.send(frame.subarray(0, frame.length - 10))
    c.socket.end()
    expect(await c.closedWithin(2_000)).toBe(true)
    expect(c.responsesTo(7)).toEqual([])
    // a truncated length prefix alone, too
    const d = await Raw.open(port)
    await d.hello()
    d.send(new Uint8Array([0, 0]))
    d.socket.end()
    expect(await d.closedWithin(2_000)).toBe(true)
    expect(d.received).toHaveLength(1)
    await stillServes()
    expect(await highWatermark('trunc', 0)).toBe(0)
  })

  it('a frame that arrives in pieces, slowly, is reassembled and answered', async () => {
    const c = await Raw.open(port)
    await c.hello()
    const frame = encodeFrame(encodeMessage({ id: 9, api: 'produce', version: 1, body: { timeoutMs: 5_000, partitions: [{ topic: 'trunc', partition: 0, batch: batchOf(['slow']) }] } }))
    for (const cut of [[0, 2], [2, 3], [3, 40], [40, frame.length]] as const) {
      c.send(frame.subarray(cut[0], cut[1]))
      await new Promise((r) => setTimeout(r, 30))
    }
    const r = await c.response(9)
    expect(r.ok).toBe(true)
    expect(r.body.partitions[0]).toEqual({ topic: 'trunc', partition: 0, count: 1, baseOffset: 0 })
    c.destroy()
  })

  it('a zero-length frame: INVALID_REQUEST under id 0', async () => {
    const c = await Raw.open(port)
    await c.hello()
    c.send(prefix(0))
    const r = await c.response(0)
    expectConnectionError(r, 'INVALID_REQUEST')
    expect(r.error!.message).toMatch(/empty/)
    expect(await c.closedWithin(2_000)).toBe(true)
  })

  it('valid msgpack that is not a request map, or a map whose id cannot be read: INVALID_REQUEST under id 0', async () => {
    const cases: unknown[] = [
      42,
      'produce',
      null,
      [1, 'produce', 1, {}],
      new Uint8Array([1, 2, 3]),
      true,
      {},
      { api: 'listTopics', version: 1, body: {} },
      { id: 0, api: 'listTopics', version: 1, body: {} },
      { id: -1, api: 'listTopics', version: 1, body: {} },
      { id: 1.5, api: 'listTopics', version: 1, body: {} },
      { id: 2 ** 32, api: 'listTopics', version: 1, body: {} },
      { id: '1', api: 'listTopics', version: 1, body: {} },
    ]
    for (const value of cases) {
      const c = await Raw.open(port)
      await c.hello()
      c.frame(value)
      const r = await c.response(0)
      expectConnectionError(r, 'INVALID_REQUEST')
      expect(await c.closedWithin(2_000), JSON.stringify(value)).toBe(true)
    }
  })

  it('nothing after a connection-level error is served, even when it came in the same write', async () => {
    const c = await Raw.open(port)
    await c.hello()
    c.send(concat([prefix(0), encodeFrame(encodeMessage({ id: 5, api: 'listTopics', version: 1, body: {} }))]))
    expectConnectionError(await c.response(0), 'INVALID_REQUEST')
    expect(await c.closedWithin(2_000)).toBe(true)
    expect(c.responsesTo(5)).toEqual([])
  })
})

describe('hardening - session rules', () => {
  it('a request before hello: HELLO_REQUIRED under its id, then the connection is closed', async () => {
    const c = await Raw.open(port)
    const id = c.request('listTopics', {})
    const r = await c.response(id)
    expect(r.ok).toBe(false)
    expect(r.error!.code).toBe('HELLO_REQUIRED')
    expect(await c.closedWithin(2_000)).toBe(true)
  })

  it('a second hello: INVALID_REQUEST, and the connection stays usable', async () => {
    const c = await Raw.open(port)
    await c.hello()
    const r = await c.call('hello', { clientId: 'again', versionMin: 1, versionMax: 1 })
    expect(r.error!.code).toBe('INVALID_REQUEST')
    expect(r.error!.message).toMatch(/hello/)
    expect((await c.call('listTopics', {})).ok).toBe(true)
    expect(c.closed).toBe(false)
    c.destroy()
  })

  it('a hello with no version in common: UNSUPPORTED_VERSION, then the connection is closed', async () => {
    const c = await Raw.open(port)
    const id = c.request('hello', { clientId: 'future', versionMin: 7, versionMax: 9 })
    // pipelined behind the failed hello: must not be served
    const after = c.request('listTopics', {})
    const r = await c.response(id)
    expect(r.error!.code).toBe('UNSUPPORTED_VERSION')
    expect(await c.closedWithin(2_000)).toBe(true)
    expect(c.responsesTo(after)).toEqual([])
  })

  it('an unknown api: UNKNOWN_API under its id, and the connection stays usable', async () => {
    const c = await Raw.open(port)
    await c.hello()
    const r = await c.call('fetchEverything', {})
    expect(r.id).toBeGreaterThan(0)
    expect(r.error!.code).toBe('UNKNOWN_API')
    expect(r.error!.message).toContain('fetchEverything')
    expect(r.error!.details).toEqual({ field: 'api' })
    // inherited property names are not APIs either
    for (const api of ['constructor', 'toString', '__proto__', 'hasOwnProperty', '']) expect((await c.call(api, {})).error!.code).toBe('UNKNOWN_API')
    expect((await c.call('listTopics', {})).ok).toBe(true)
    expect(c.closed).toBe(false)
    c.destroy()
  })

  it('an unsupported version: UNSUPPORTED_VERSION under its id, and the connection stays usable', async () => {
    const c = await Raw.open(port)
    await c.hello()
    for (const version of [0, 2, 65535, 2 ** 40]) {
      const r = await c.call('listTopics', {}, { version })
      expect(r.error!.code).toBe('UNSUPPORTED_VERSION')
      expect(r.error!.details).toEqual({ field: 'version' })
    }
    expect((await c.call('hello', { clientId: 'x', versionMin: 1, versionMax: 1 }, { version: 2 })).error!.code).toBe('UNSUPPORTED_VERSION')
    for (const version of ['1', null, 1.5]) expect((await c.call('listTopics', {}, { version: version as never })).error!.code).toBe('INVALID_REQUEST')
    expect((await c.call('listTopics', {})).ok).toBe(true)
    c.destroy()
  })

  it('a bad envelope with a readable id: INVALID_REQUEST under that id, connection usable', async () => {
    const c = await Raw.open(port)
    await c.hello()
    const cases: [Record<string, unknown>, string][] = [
      [{ id: 100, api: 7, version: 1, body: {} }, 'api'],
      [{ id: 101, api: 'listTopics', version: 1 }, 'body'],
      [{ id: 102, api: 'listTopics', version: 1, body: {}, extra: 1 }, 'extra'],
      [{ id: 103, api: 'listTopics', version: 1, body: [] }, 'body'],
      [{ id: 104, api: 'listTopics', version: 1, body: { x: 1 } }, 'body.x'],
    ]
    for (const [env, field] of cases) {
      c.frame(env)
      const r = await c.response(env['id'] as number)
      expect(r.error!.code, JSON.stringify(env)).toBe('INVALID_REQUEST')
      expect(r.error!.details, JSON.stringify(env)).toEqual({ field })
    }
    expect((await c.call('listTopics', {})).ok).toBe(true)
    c.destroy()
  })
})

describe('hardening - wrong field types: INVALID_REQUEST naming the field', () => {
  it('produce, fetch and createTopic', async () => {
    const c = await Raw.open(port)
    await c.hello()
    const batch = batchOf(['x'])
    const produce = (over: Record<string, unknown>, part: Record<string, unknown> = {}) => ({
      timeoutMs: 1_000,
      partitions: [{ topic: 'trunc', partition: 0, batch, ...part }],
      ...over,
    })
    const fetch = (over: Record<string, unknown>, part: Record<string, unknown> = {}) => ({
      maxWaitMs: 0,
      maxBytes: 1 << 20,
      partitions: [{ topic: 'trunc', partition: 0, offset: 0, ...part }],
      ...over,
    })
    const create = (over: Record<string, unknown>) => ({ name: 'typed', partitions: 1, replicationFactor: 1, ...over })
    const cases: [string, unknown, string, string?][] = [
      ['produce', produce({ timeoutMs: '1000' }), 'body.timeoutMs'],
      ['produce', produce({ timeoutMs: -1 }), 'body.timeoutMs'],
      ['produce', produce({ timeoutMs: 1e12 }), 'body.timeoutMs'],
      ['produce', produce({ atomic: 1 }), 'body.atomic'],
      ['produce', produce({ partitions: {} }), 'body.partitions'],
      ['produce', produce({ partitions: [] }), 'body.partitions'],
      ['produce', produce({}, { batch: 'a batch' }), 'body.partitions[0].batch'],
      ['produce', produce({}, { batch: [1, 2, 3] }), 'body.partitions[0].batch'],
      ['produce', produce({}, { batch: null }), 'body.partitions[0].batch'],
      ['produce', produce({}, { partition: -1 }), 'body.partitions[0].partition'],
      ['produce', produce({}, { partition: '0' }), 'body.partitions[0].partition'],
      ['produce', produce({}, { topic: 7 }), 'body.partitions[0].topic'],
      ['produce', produce({}, { topic: 'no spaces' }), 'body.partitions[0].topic', 'INVALID_TOPIC'],
      ['produce', produce({}, { extra: true }), 'body.partitions[0].extra'],
      ['produce', produce({ partitions: [{ topic: 'trunc', partition: 0, batch }, { topic: 'trunc', partition: 0, batch }] }), 'body.partitions[1]'],
      ['fetch', fetch({ maxWaitMs: -5 }), 'body.maxWaitMs'],
      ['fetch', fetch({ maxWaitMs: 'soon' }), 'body.maxWaitMs'],
      ['fetch', fetch({ maxBytes: 0 }), 'body.maxBytes'],
      ['fetch', fetch({}, { offset: 'zero' }), 'body.partitions[0].offset'],
      ['fetch', fetch({}, { offset: -1 }), 'body.partitions[0].offset'],
      ['fetch', fetch({}, { offset: 0.5 }), 'body.partitions[0].offset'],
      ['fetch', fetch({}, { offset: 2 ** 53 }), 'body.partitions[0].offset'],
      ['fetch', fetch({}, { maxMessages: 0 }), 'body.partitions[0].maxMessages'],
      ['fetch', fetch({}, { topic: null }), 'body.partitions[0].topic'],
      ['createTopic', create({ partitions: '3' }), 'body.partitions'],
      ['createTopic', create({ partitions: 0 }), 'body.partitions'],
      ['createTopic', create({ replicationFactor: null }), 'body.replicationFactor'],
      ['createTopic', create({ name: 42 }), 'body.name'],
      ['createTopic', create({ name: '..' }), 'body.name', 'INVALID_TOPIC'],
      ['createTopic', create({ name: 'x'.repeat(250) }), 'body.name', 'INVALID_TOPIC'],
      ['createTopic', create({ retentionMs: 'a week' }), 'body.retentionMs'],
      ['createTopic', create({ retentionBytes: -1 }), 'body.retentionBytes'],
    ]
    for (const [api, body, field, code = 'INVALID_REQUEST'] of cases) {
      const r = await c.call(api, body)
      const what = `${api} ${field}`
      expect(r.ok, what).toBe(false)
      expect(r.error!.code, what).toBe(code)
      expect(r.error!.details, what).toEqual({ field: expect.stringMatching(new RegExp(`^${field.replace(/[[\].]/g, '\\$&')}`)) })
      expect(r.error!.message, what).toContain(field)
    }
    expect(c.closed).toBe(false)
    expect((await c.call('listTopics', {})).body.topics.map((t: { name: string }) => t.name)).not.toContain('typed')
    expect(await highWatermark('trunc', 0)).toBe(1)
    c.destroy()
  })
})

describe('hardening - damaged record batches fail their own partition only', () => {
  it('not a batch, bad CRC, truncated, trailing bytes, bad magic, corrupt compressed payloads, malformed records', async () => {
    await createTopic('dmg', 2)
    const good = batchOf(['one', 'two'])
    const flip = (b: Uint8Array, at: number): Uint8Array => {
      const c = new Uint8Array(b)
      c[at] = c[at]! ^ 0x40
      return c
    }
    const cases: [string, Uint8Array, string][] = [
      ['not a record batch', enc.encode('hello, broker'), 'CORRUPT_MESSAGE'],
      ['empty bytes', new Uint8Array(0), 'CORRUPT_MESSAGE'],
      ['random bytes', Uint8Array.from({ length: 200 }, (_, i) => (i * 37 + 11) & 0xff), 'INVALID_RECORD'],
      ['a bit flipped in a value (bad CRC)', flip(good, good.length - 3), 'CORRUPT_MESSAGE'],
      ['a bit flipped in the CRC', flip(good, 18), 'CORRUPT_MESSAGE'],
      ['truncated', good.subarray(0, good.length - 5), 'CORRUPT_MESSAGE'],
      ['only the header', good.subarray(0, 61), 'CORRUPT_MESSAGE'],
      ['bytes after the batch', concat([good, new Uint8Array(3)]), 'INVALID_RECORD'],
      ['magic 1', (() => { const b = new Uint8Array(good); b[16] = 1; return b })(), 'INVALID_RECORD'],
      ['batchLength past the end', (() => { const b = new Uint8Array(good); new DataView(b.buffer).setInt32(8, 1 << 30); return b })(), 'CORRUPT_MESSAGE'],
      ['negative batchLength', (() => { const b = new Uint8Array(good); new DataView(b.buffer).setInt32(8, -20); return b })(), 'CORRUPT_MESSAGE'],
      ['record count 0 (resealed)', (() => { const b = new Uint8Array(good); new DataView(b.buffer).setInt32(57, 0); return reseal(b) })(), 'INVALID_RECORD'],
      ['transactional (resealed)', (() => { const b = new Uint8Array(good); b[22] = b[22]! | 0x10; return reseal(b) })(), 'INVALID_RECORD'],
      ['codec 7 (resealed)', (() => { const b = new Uint8Array(good); b[22] = b[22]! | 0x07; return reseal(b) })(), 'INVALID_RECORD'],
      ['producer id -129 (resealed)', (() => { const b = new Uint8Array(good); new DataView(b.buffer).setBigInt64(43, -129n); return reseal(b) })(), 'INVALID_RECORD'],
      ['producer id 5 with epoch -1 (resealed)', (() => { const b = new Uint8Array(good); new DataView(b.buffer).setBigInt64(43, 5n); return reseal(b) })(), 'INVALID_RECORD'],
      ['producer id 5 with base sequence -7 (resealed)', (() => {
        const b = new Uint8Array(good)
        const v = new DataView(b.buffer)
        v.setBigInt64(43, 5n)
        v.setInt16(51, 0)
        v.setInt32(53, -7)
        return reseal(b)
      })(), 'INVALID_RECORD'],
      ['producer id past 2^53 (resealed)', (() => { const b = new Uint8Array(good); new DataView(b.buffer).setBigInt64(43, 2n ** 60n); return reseal(b) })(), 'INVALID_RECORD'],
      ['snappy', (() => { const b = new Uint8Array(good); b[22] = (b[22]! & ~7) | 2; return reseal(b) })(), 'UNSUPPORTED_COMPRESSION'],
    ]
    for (const codec of ['gzip', 'lz4', 'zstd'] as const) {
      const packed = batchOf(['compressed one', 'compressed two', 'x'.repeat(300)], codec)
      const payload = packed.subarray(61)
      cases.push([`${codec}: payload truncated (resealed)`, withRecords(packed, payload.subarray(0, payload.length >> 1)), 'CORRUPT_MESSAGE'])
      cases.push([`${codec}: payload garbage (resealed)`, withRecords(packed, Uint8Array.from(payload, (x, i) => x ^ (i * 7 + 1))), 'CORRUPT_MESSAGE'])
      cases.push([`${codec}: payload empty (resealed)`, withRecords(packed, new Uint8Array(0)), 'CORRUPT_MESSAGE'])
      // a payload of another codec under this codec's bits
      cases.push([`${codec}: payload is plain records (resealed)`, withRecords(packed, good.subarray(61)), 'CORRUPT_MESSAGE'])
    }
    // CRC-valid batches whose records section is malformed: the CRC only says the bytes arrived as sent
    const records = good.subarray(61)
    cases.push(['uncompressed: records section truncated (resealed)', withRecords(good, records.subarray(0, records.length - 4)), 'CORRUPT_MESSAGE'])
    cases.push(['uncompressed: bytes after the last record (resealed)', withRecords(good, concat([records, new Uint8Array([0, 0])])), 'CORRUPT_MESSAGE'])
    cases.push(['uncompressed: a record length past the end (resealed)', withRecords(good, concat([new Uint8Array([0x7e]), records.subarray(1)])), 'CORRUPT_MESSAGE'])
    cases.push(['uncompressed: more records declared than present (resealed)', (() => {
      const b = new Uint8Array(good)
      new DataView(b.buffer).setInt32(57, 3)
      new DataView(b.buffer).setInt32(23, 2)
      return reseal(b)
    })(), 'CORRUPT_MESSAGE'])
    cases.push(['gzip: records inside malformed (resealed)', withRecords(batchOf(['a', 'b'], 'gzip'), gzipSync(records.subarray(0, records.length - 3))), 'CORRUPT_MESSAGE'])

    const c = await Raw.open(port)
    await c.hello()
    let next = 0
    for (const [what, damaged, code] of cases) {
      const value = `ok-${next}`
      for (const atomic of [false, true]) {
        const r = await c.call('produce', {
          timeoutMs: 5_000,
          atomic,
          partitions: [
            { topic: 'dmg', partition: 0, batch: batchOf([value]) },
            { topic: 'dmg', partition: 1, batch: damaged },
          ],
        })
        expect(r.ok, what).toBe(true)
        const [p0, p1] = r.body.partitions
        expect(p0, what).toEqual({ topic: 'dmg', partition: 0, count: 1, baseOffset: next })
        expect(Object.keys(p1).sort(), what).toEqual(['error', 'partition', 'topic'])
        expect(p1.topic).toBe('dmg')
        expect(p1.partition).toBe(1)
        expect(p1.error?.code, `${what}: ${p1.error?.message}`).toBe(code)
        next++
      }
    }
    expect(c.closed).toBe(false)
    c.destroy()
    expect(await highWatermark('dmg', 1)).toBe(0)
    const stored = await readAll(admin, 'dmg', 0)
    expect(stored.records.map((r) => r.offset)).toEqual(Array.from({ length: next }, (_, i) => i))
  })
})

describe('hardening - oversized records', () => {
  const big = new Uint8Array(limits.produce.messageBytesMax + 1).fill(7)

  it('non-atomic: MESSAGE_TOO_LARGE for that record, the others are stored (uncompressed and gzip)', async () => {
    await createTopic('big', 2)
    const c = await Raw.open(port)
    await c.hello()
    let expectOffset = 0
    for (const compression of ['none', 'gzip'] as const) {
      const r = await c.call('produce', { timeoutMs: 10_000, partitions: [{ topic: 'big', partition: 0, batch: batchOf(['a', big, 'c', big, 'e'], compression) }] })
      const results = produceResults(r.body.partitions[0]) as { offset?: number; error?: WireErr }[]
      expect(r.body.partitions[0].error).toBeUndefined()
      expect(results[0]).toEqual({ offset: expectOffset })
      expect(results[1]!.error!.code).toBe('MESSAGE_TOO_LARGE')
      expect(results[1]!.error!.message).toContain(String(limits.produce.messageBytesMax))
      expect(results[2]).toEqual({ offset: expectOffset + 1 })
      expect(results[3]!.error!.code).toBe('MESSAGE_TOO_LARGE')
      expect(results[4]).toEqual({ offset: expectOffset + 2 })
      expectOffset += 3
    }
    c.destroy()
    const stored = await readAll(admin, 'big', 0)
    expect(stored.records.map((r) => [r.offset, dec.decode(r.value!)])).toEqual([
      [0, 'a'], [1, 'c'], [2, 'e'], [3, 'a'], [4, 'c'], [5, 'e'],
    ])
  })

  it('atomic: nothing is stored, MESSAGE_TOO_LARGE for the record and BATCH_REJECTED for the rest', async () => {
    const c = await Raw.open(port)
    await c.hello()
    for (const compression of ['none', 'zstd'] as const) {
      const r = await c.call('produce', {
        timeoutMs: 10_000,
        atomic: true,
        partitions: [
          { topic: 'big', partition: 1, batch: batchOf(['a', big, 'c'], compression) },
          { topic: 'big', partition: 0, batch: batchOf(['fine']) },
        ],
      })
      const [p1, p0] = r.body.partitions
      expect(p1.baseOffset).toBeUndefined()
      expect(produceResults(p1).map((x) => ('error' in x ? x.error.code : 'stored'))).toEqual(['BATCH_REJECTED', 'MESSAGE_TOO_LARGE', 'BATCH_REJECTED'])
      expect(p0.baseOffset).toBeGreaterThanOrEqual(6)
    }
    c.destroy()
    expect(await highWatermark('big', 1)).toBe(0)
  })
})

describe('hardening - fetch past the end', () => {
  it('OFFSET_OUT_OF_RANGE with the range, for that partition only', async () => {
    await createTopic('range', 2)
    const c = await Raw.open(port)
    await c.hello()
    await c.call('produce', { timeoutMs: 5_000, partitions: [{ topic: 'range', partition: 0, batch: batchOf(['a', 'b', 'c']) }] })
    for (const offset of [4, 1000, Number.MAX_SAFE_INTEGER]) {
      for (const maxWaitMs of [0, 200]) {
        const r = await c.call('fetch', {
          maxWaitMs,
          maxBytes: 1 << 20,
          partitions: [
            { topic: 'range', partition: 0, offset },
            { topic: 'range', partition: 1, offset: 0 },
            { topic: 'nope', partition: 0, offset: 0 },
          ],
        })
        expect(r.ok).toBe(true)
        const [p0, p1, p2] = r.body.partitions
        expect(p0.error.code).toBe('OFFSET_OUT_OF_RANGE')
        expect(p0.error.details).toEqual({ logStartOffset: 0, highWatermark: 3 })
        expect(p0.error.message).toContain(String(offset))
        expect(p0.error.message).toContain('[0, 3]')
        expect(p0.batches).toEqual([])
        // the partition entry reports the range it knows, as fetch.ts documents
        expect([p0.logStartOffset, p0.highWatermark]).toEqual([0, 3])
        expect(p1.error).toBeUndefined()
        expect(p1.highWatermark).toBe(0)
        expect(p2.error.code).toBe('UNKNOWN_TOPIC')
        expect([p2.logStartOffset, p2.highWatermark]).toEqual([-1, -1])
        expect(validateResponse(r, 'fetch').ok).toBe(true)
      }
    }
    // the end itself is not out of range: it is where the next record goes
    const atEnd = await c.call('fetch', { maxWaitMs: 0, maxBytes: 1 << 20, partitions: [{ topic: 'range', partition: 0, offset: 3 }] })
    expect(atEnd.body.partitions[0].error).toBeUndefined()
    expect(atEnd.body.partitions[0].batches).toEqual([])
    c.destroy()
  })
})

describe('hardening - pipelining', () => {
  it('many requests in one write are answered by id, in any order', async () => {
    await createTopic('pipe', 2)
    const c = await Raw.open(port)
    await c.hello()
    const frames: Uint8Array[] = []
    const apis = new Map<number, ApiName>()
    const add = (id: number, api: ApiName, body: unknown): void => {
      apis.set(id, api)
      frames.push(encodeFrame(encodeMessage({ id, api, version: 1, body })))
    }
    // a long poll first: everything behind it is answered before it
    add(1, 'fetch', { maxWaitMs: 1_500, maxBytes: 1 << 20, partitions: [{ topic: 'pipe', partition: 0, offset: 0 }] })
    const produced: number[] = []
    for (let i = 0; i < 400; i++) {
      const id = 1000 + i
      switch (i % 5) {
        case 0:
          add(id, 'produce', { timeoutMs: 5_000, partitions: [{ topic: 'pipe', partition: 1, batch: batchOf([`p${i}`]) }] })
          produced.push(id)
          break
        case 1:
          add(id, 'listTopics', {})
          break
        case 2:
          add(id, 'metadata', { topics: ['pipe'] })
          break
        case 3:
          add(id, 'listOffsets', { partitions: [{ topic: 'pipe', partition: 1, spec: 'latest' }] })
          break
        case 4:
          frames.push(encodeFrame(encodeMessage({ id, api: 'noSuchApi', version: 1, body: {} })))
          break
      }
    }
    c.send(concat(frames))
    const total = frames.length
    expect(await c.until(() => c.received.length >= total + 1, 10_000)).toBe(true)
    const answers = c.received.slice(1) as Resp[]
    expect(answers.map((r) => r.id).sort((a, b) => a - b)).toEqual([1, ...Array.from({ length: 400 }, (_, i) => 1000 + i)])
    for (const r of answers) expect(validateResponse(r, apis.get(r.id)).ok, JSON.stringify(r).slice(0, 200)).toBe(true)
    for (const r of answers) if (apis.get(r.id) === undefined) expect(r.error!.code).toBe('UNKNOWN_API')
    // metadata advertises the port the node really listens on (it was asked for port 0)
    for (const r of answers) if (apis.get(r.id) === 'metadata') expect(r.body.nodes).toEqual([{ id: 1, host: '127.0.0.1', port }])
    // out of order: the long poll was the first request and is answered last
    expect(answers[answers.length - 1]!.id).toBe(1)
    const offsets = produced.map((id) => answers.find((r) => r.id === id)!.body.partitions[0].baseOffset as number)
    expect([...offsets].sort((a, b) => a - b)).toEqual(Array.from({ length: produced.length }, (_, i) => i))
    c.destroy()
  })

  it('past the in-flight limit the server stops reading, then catches up: every request is answered once', async () => {
    const c = await Raw.open(port)
    await c.hello()
    const n = limits.protocol.inflightRequestsMax * 3
    const frames: Uint8Array[] = []
    for (let i = 0; i < n; i++) {
      const id = 10 + i
      const body = i % 3 === 0 ? { timeoutMs: 10_000, partitions: [{ topic: 'pipe', partition: 0, batch: batchOf([`q${i}`]) }] } : { partitions: [{ topic: 'pipe', partition: 0, spec: 'latest' }] }
      frames.push(encodeFrame(encodeMessage({ id, api: i % 3 === 0 ? 'produce' : 'listOffsets', version: 1, body })))
    }
    c.send(concat(frames))
    expect(await c.until(() => c.received.length >= n + 1, 30_000)).toBe(true)
    const ids = (c.received.slice(1) as Resp[]).map((r) => r.id)
    expect(new Set(ids).size).toBe(n)
    expect((c.received.slice(1) as Resp[]).every((r) => r.ok)).toBe(true)
    c.destroy()
    expect(await highWatermark('pipe', 0)).toBe(n / 3)
  })
})

describe('hardening - memory claimed by requests in flight', () => {
  it('long polls that may answer more than inflightBytesMax stop the reading until they end', async () => {
    await createTopic('claims', 2)
    const c = await Raw.open(port)
    await c.hello()
    const each = limits.fetch.responseBytesMax
    const polls = Math.floor(limits.protocol.inflightBytesMax / each) + 4
    // the polls last 4 s; the produce is checked after 1 s, a wide margin on a loaded machine
    const fetch = { maxWaitMs: 4_000, maxBytes: each, partitions: [{ topic: 'claims', partition: 0, offset: 0 }] }
    c.send(concat(Array.from({ length: polls }, (_, i) => encodeFrame(encodeMessage({ id: 100 + i, api: 'fetch', version: 1, body: fetch })))))
    await new Promise((r) => setTimeout(r, 300))
    // the polls claim more than the limit: this produce waits in the socket until they answer
    c.request('produce', { timeoutMs: 5_000, partitions: [{ topic: 'claims', partition: 1, batch: batchOf(['after the polls']) }] }, { id: 999 })
    await new Promise((r) => setTimeout(r, 700))
    expect(await highWatermark('claims', 1)).toBe(0)
    expect(await c.until(() => c.received.length >= 1 + polls + 1, 15_000)).toBe(true)
    expect(c.received.slice(1).every((r) => (r as Resp).ok)).toBe(true)
    expect(await highWatermark('claims', 1)).toBe(1)
    c.destroy()
  })
})

describe('hardening - a client that does not read its answers', () => {
  it('is not read from while its answers pile up; the node keeps serving others; nothing is lost once it reads', async () => {
    await createTopic('slow', 2)
    await admin.request('produce', { timeoutMs: 5_000, partitions: [{ topic: 'slow', partition: 0, batch: batchOf([new Uint8Array(900_000).fill(1)]) }] })
    const c = await Raw.open(port)
    await c.hello()
    c.socket.pause() // read nothing from here on
    const fetch = { maxWaitMs: 0, maxBytes: 1 << 20, partitions: [{ topic: 'slow', partition: 0, offset: 0 }] }
    const frames = Array.from({ length: 60 }, (_, i) => encodeFrame(encodeMessage({ id: 100 + i, api: 'fetch', version: 1, body: fetch })))
    c.send(concat(frames)) // about 54 MB of answers
    // probes: small produces sent one by one; once the answers pile up, one stays unread
    let sent = 0
    let stalled = false
    for (const until = Date.now() + 15_000; Date.now() < until && !stalled; ) {
      c.request('produce', { timeoutMs: 5_000, partitions: [{ topic: 'slow', partition: 1, batch: batchOf([`probe ${sent}`]) }] }, { id: 1000 + sent })
      sent++
      for (let wait = 0; wait < 10 && (await highWatermark('slow', 1)) < sent; wait++) await new Promise((r) => setTimeout(r, 100))
      stalled = (await highWatermark('slow', 1)) < sent
    }
    expect(stalled, `the server kept reading: all ${sent} probes were stored`).toBe(true)
    // and stays stalled, while other clients are served at once
    await new Promise((r) => setTimeout(r, 500))
    const t0 = Date.now()
    expect(await highWatermark('slow', 1)).toBe(sent - 1)
    expect(Date.now() - t0).toBeLessThan(2_000)
    c.socket.resume()
    expect(await c.until(() => c.received.length >= 1 + 60 + sent, 20_000)).toBe(true)
    expect(c.received.slice(1).every((r) => (r as Resp).ok)).toBe(true)
    expect(await highWatermark('slow', 1)).toBe(sent)
    c.destroy()
  })
})

// ---------------------------------------------------------------------------------------
// Part 2: the fuzz loop.

const FUZZ_SEED = Number(process.env['RAFTMQ_FUZZ_SEED'] ?? 20240607)
const FUZZ_MS = Number(process.env['RAFTMQ_FUZZ_MS'] ?? 20_000)
const FUZZ_LANES = 12
/** New topics the fuzzer may create (each is Raft groups and LevelDB directories). */
const CREATES_MAX = 6

/** The topics as the oracle knows them: those before the run (never deleted), and those it let the fuzzer create. */
interface Topics {
  readonly before: ReadonlySet<string>
  readonly created: Set<string>
}

/** What the server must do with one frame, as the oracle reads it. */
type Expect =
  | { readonly kind: 'error'; readonly id: number; readonly code: string }
  | { readonly kind: 'answer'; readonly id: number; readonly api: ApiName; readonly request: Request; readonly required: boolean }

interface Plan {
  readonly expects: Expect[]
  /** The connection must end with an id-0 error of this code (and close). */
  readonly fatal: string | null
  /** The connection must close (fatal, HELLO_REQUIRED, or a failed hello). */
  readonly close: boolean
  /** The longest long-poll among the valid fetches (their answers may take that long). */
  readonly waitMs: number
  /** Why the input is not sent, when it would do something the run cannot afford. */
  readonly skip: string | null
}

/**
 * The oracle: what the protocol says a server must answer to exactly these bytes sent on
 * one fresh connection (src/protocol/api.ts session rules, frame.ts framing). It uses the
 * protocol's own parser for envelopes; the server's session handling is what is tested.
 */
function plan(bytes: Uint8Array, topics: Topics): Plan {
  const expects: Expect[] = []
  let fatal: string | null = null
  let close = false
  let greeted = false
  let waitMs = 0
  let skip: string | null = null
  const frames: Uint8Array[] = []
  const decoder = new FrameDecoder({ frame: (b) => frames.push(new Uint8Array(b)), error: (e) => (fatal = e.code) })
  decoder.push(bytes)
  const frameError = fatal
  fatal = null
  for (const frame of frames) {
    const parsed = parseRequest(frame)
    if (!parsed.ok) {
      if (parsed.error.id === undefined) {
        fatal = parsed.error.code
        close = true
        break
      }
      expects.push({ kind: 'error', id: parsed.error.id, code: parsed.error.code })
      continue
    }
    const req = parsed.value
    if (!greeted && req.api !== 'hello') {
      expects.push({ kind: 'error', id: req.id, code: 'HELLO_REQUIRED' })
      close = true
      break
    }
    if (greeted && req.api === 'hello') {
      expects.push({ kind: 'error', id: req.id, code: 'INVALID_REQUEST' })
      continue
    }
    if (req.api === 'hello') {
      if (!negotiateVersion(req.body.versionMin, req.body.versionMax).ok) {
        expects.push({ kind: 'error', id: req.id, code: 'UNSUPPORTED_VERSION' })
        close = true
        break
      }
      greeted = true
    }
    if (req.api === 'createTopic' && !topics.before.has(req.body.name) && !topics.created.has(req.body.name)) {
      // a new topic is new Raft groups and LevelDB directories: a few small ones only
      if (req.body.partitions > 2 || topics.created.size >= CREATES_MAX) skip ??= `createTopic ${req.body.name} of ${req.body.partitions} partitions`
      else topics.created.add(req.body.name)
    }
    if (req.api === 'deleteTopic' && topics.before.has(req.body.name)) skip ??= `deleteTopic ${req.body.name}`
    let required = true
    if (req.api === 'fetch') {
      // a long poll at the end of a log may legitimately take its whole maxWaitMs
      if (req.body.maxWaitMs > 1_500) required = false
      else waitMs = Math.max(waitMs, req.body.maxWaitMs)
    }
    expects.push({ kind: 'answer', id: req.id, api: req.api, request: req, required })
  }
  if (fatal === null && frameError !== null && !close) {
    fatal = frameError
    close = true
  }
  // answers to valid requests may be lost when the server closes the connection under them
  if (close) for (let i = 0; i < expects.length; i++) if (expects[i]!.kind === 'answer') expects[i] = { ...(expects[i] as Expect & { kind: 'answer' }), required: false }
  return { expects, fatal, close, waitMs, skip }
}

/** A batch the fuzzer sent inside a valid produce, in a form comparable with what fetch returns (baseOffset aside). */
function batchKey(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset + 8, b.byteLength - 8).toString('base64')
}

/** Sets an own property, even one named `__proto__` (assignment would change the prototype). */
function setOwn(o: object, key: string, value: unknown): void {
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true })
}

function randomBytes(p: Prng, n: number): Uint8Array {
  const b = new Uint8Array(n)
  for (let i = 0; i < n; i++) b[i] = p.int(256)
  return b
}

const CHARS = 'abcdefghijklmnopqrstuvwxyz0123456789._-'

function randomName(p: Prng): string {
  if (p.chance(0.3)) return p.pick(['fz', 'good', 'dmg', 'nope', 'fz2', '..', '', 'a b', '__proto__', 'constructor'])
  let s = 'f'
  for (let n = p.range(0, 8); n > 0; n--) s += CHARS[p.int(CHARS.length)]
  return s
}

/** A random msgpack-able value: the things a confused client might put in a field. */
function randomValue(p: Prng, depth = 0): unknown {
  switch (p.int(depth > 2 ? 9 : 12)) {
    case 0:
      return null
    case 1:
      return p.chance(0.5)
    case 2:
      return p.pick([0, 1, -1, 2, 255, 65535, 65536, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1, 2 ** 53, -(2 ** 53), 2 ** 64])
    case 3:
      return p.range(-1000, 100_000)
    case 4:
      return p.pick([0.5, -0.0, Number.NaN, Number.POSITIVE_INFINITY, 1e300, 3.14])
    case 5:
      return randomName(p)
    case 6:
      return p.pick(['', 'x'.repeat(300), 'produce', 'hello', 'earliest', 'latest', '\u0000', '\ud83d\ude00'])
    case 7:
      return randomBytes(p, p.range(0, 80))
    case 8:
      return p.pick([BigInt(2) ** BigInt(63) - BigInt(1), -(BigInt(2) ** BigInt(63)), new Date(0)])
    case 9:
    case 10:
      return Array.from({ length: p.range(0, 4) }, () => randomValue(p, depth + 1))
    default: {
      const m: Record<string, unknown> = {}
      for (let n = p.range(0, 4); n > 0; n--) setOwn(m, p.chance(0.2) ? p.pick(['__proto__', 'constructor', 'id', 'topic', 'partition', 'batch']) : randomName(p), randomValue(p, depth + 1))
      return m
    }
  }
}

interface FuzzWorld {
  /** Where requests go: the fuzz topics, the good client's topic, and one that does not exist. */
  readonly topics: readonly { name: string; partitions: number }[]
  /** An idempotent producer some batches claim to come from (sequences drawn at random). */
  readonly producer: { readonly producerId: number; readonly producerEpoch: number }
}

function fuzzRecords(p: Prng, tag: string): RecordInput[] {
  return Array.from({ length: p.range(1, 6) }, (_, i) => ({
    key: p.chance(0.5) ? null : `k${p.int(100)}`,
    value: p.chance(0.1) ? null : `${tag}-${i}-${'v'.repeat(p.int(40))}`,
    headers: p.chance(0.2) ? [{ key: 'h', value: 'x' }] : undefined,
    timestamp: 1_700_000_000_000 + p.int(1000),
  }))
}

function fuzzBatch(p: Prng, w: FuzzWorld, tag: string): Uint8Array {
  const compression = p.pick(['none', 'none', 'gzip', 'lz4', 'zstd'] as const)
  if (p.chance(0.8)) return encodeRecordBatch(fuzzRecords(p, tag), { compression })
  // idempotent: in order, out of order, a retry, a stale or future epoch
  const { producerId, producerEpoch } = w.producer
  return encodeRecordBatch(fuzzRecords(p, tag), {
    compression,
    producerId,
    producerEpoch: p.chance(0.8) ? producerEpoch : p.pick([0, producerEpoch + 1, 0x7fff]),
    baseSequence: p.chance(0.1) ? 0x7fff_fffe : p.int(60),
  })
}

function seedBody(p: Prng, api: ApiName, w: FuzzWorld, tag: string): unknown {
  const tp = (): { topic: string; partition: number } => {
    // the last topic does not exist: now and then
    const t = p.chance(0.1) ? w.topics[w.topics.length - 1]! : p.pick(w.topics.slice(0, -1))
    return { topic: t.name, partition: p.int(t.partitions) }
  }
  const distinct = <T extends { topic: string; partition: number }>(make: () => T): T[] => {
    const out: T[] = []
    for (let n = p.range(1, 3); n > 0; n--) {
      const x = make()
      if (!out.some((o) => o.topic === x.topic && o.partition === x.partition)) out.push(x)
    }
    return out
  }
  switch (api) {
    case 'hello':
      return { clientId: `fuzz-${tag}`, versionMin: 1, versionMax: p.chance(0.8) ? 1 : 3 }
    case 'metadata':
      return p.chance(0.5) ? {} : { topics: ['fz', 'good'] }
    case 'createTopic':
      return { name: p.chance(0.7) ? 'fz' : 'good', partitions: 1, replicationFactor: 1 }
    case 'deleteTopic':
      return { name: `gone-${p.int(5)}` }
    case 'listTopics':
    case 'initProducerId':
      return {}
    case 'describeTopic':
      return { name: p.pick(w.topics).name }
    case 'listOffsets':
      return { partitions: distinct(() => ({ ...tp(), spec: p.chance(0.5) ? 'earliest' : 'latest' })) }
    case 'fetch':
      return { maxWaitMs: p.chance(0.7) ? 0 : p.range(1, 200), maxBytes: p.range(1, 1 << 20), partitions: distinct(() => ({ ...tp(), offset: p.range(0, 60) })) }
    case 'produce':
      return { timeoutMs: 10_000, ...(p.chance(0.3) ? { atomic: p.chance(0.5) } : {}), partitions: distinct(() => ({ ...tp(), batch: fuzzBatch(p, w, tag) })) }
  }
}

const SEED_APIS: ApiName[] = ['produce', 'produce', 'produce', 'fetch', 'fetch', 'listOffsets', 'metadata', 'listTopics', 'describeTopic', 'initProducerId', 'createTopic', 'deleteTopic', 'hello']

interface Input {
  readonly bytes: Uint8Array
  readonly how: string
  /** Pieces to write separately (indices into bytes). */
  readonly cuts: number[]
}

/** Walks an object tree and replaces (or deletes, or adds) one field with a random value. */
function mutateField(p: Prng, root: Record<string, unknown>): string {
  let node: any = root
  let path = ''
  for (let depth = 0; depth < 6; depth++) {
    const keys = node !== null && typeof node === 'object' && !(node instanceof Uint8Array) ? Object.keys(node) : []
    if (keys.length === 0) break
    const k = p.pick(keys)
    const child = node[k]
    const descend = child !== null && typeof child === 'object' && !(child instanceof Uint8Array) && p.chance(0.7)
    if (!descend) {
      const r = p.int(10)
      if (r === 0) {
        delete node[k]
        return `${path}.${k} deleted`
      }
      if (r === 1 && !Array.isArray(node)) {
        const extra = randomName(p)
        setOwn(node, extra, randomValue(p))
        return `${path}.${extra} added`
      }
      setOwn(node, k, randomValue(p))
      return `${path}.${k} = random`
    }
    node = child
    path += `.${k}`
  }
  return 'no field'
}

/** Damages a produce batch in one of the ways a bad client or a bad network would. */
function damageBatch(p: Prng, b: Uint8Array): { batch: Uint8Array; how: string } {
  const c = new Uint8Array(b)
  switch (p.int(6)) {
    case 0: {
      for (let n = p.range(1, 4); n > 0; n--) c[p.int(c.length)] ^= 1 << p.int(8)
      return { batch: c, how: 'batch bit flips' }
    }
    case 1: {
      // a flip inside the CRC's scope, resealed: the header fields or the records must catch it
      for (let n = p.range(1, 3); n > 0; n--) {
        const at = p.chance(0.5) ? 21 + p.int(40) : 61 + p.int(Math.max(1, c.length - 61))
        if (at < c.length) c[at] ^= 1 << p.int(8)
      }
      return { batch: reseal(c), how: 'batch bit flips resealed' }
    }
    case 2:
      return { batch: c.subarray(0, p.int(c.length)), how: 'batch truncated' }
    case 3:
      return { batch: reseal(c.subarray(0, 61 + p.int(Math.max(1, c.length - 61)))), how: 'batch truncated resealed' }
    case 4:
      return { batch: randomBytes(p, p.range(0, 120)), how: 'batch random' }
    default: {
      c[22] = (c[22]! & ~7) | p.int(8)
      return { batch: reseal(c), how: 'batch codec bits resealed' }
    }
  }
}

function envelopeFrame(env: unknown): Uint8Array {
  return encodeFrame(encodeMessage(env))
}

function makeInput(p: Prng, w: FuzzWorld, tag: string): Input {
  const envs: Record<string, unknown>[] = []
  // ids are distinct within an input, except now and then (a client bug the server must survive)
  let id = p.range(1, 1000)
  const nextId = (): number => (p.chance(0.05) ? p.range(1, 3) : id++)
  if (p.chance(0.92)) envs.push({ id: nextId(), api: 'hello', version: 1, body: seedBody(p, 'hello', w, tag) })
  for (let n = p.range(1, 3); n > 0; n--) {
    const api = p.pick(SEED_APIS)
    envs.push({ id: nextId(), api, version: 1, body: seedBody(p, api, w, tag) })
  }
  let how: string
  let bytes: Uint8Array
  const target = envs[envs.length - 1]!
  const strategy = p.int(15)
  switch (strategy) {
    case 0:
      how = 'none'
      bytes = concat(envs.map(envelopeFrame))
      break
    case 1:
    case 2: {
      how = `field: ${mutateField(p, target)}`
      bytes = concat(envs.map(envelopeFrame))
      break
    }
    case 3:
    case 14: {
      // damage one batch of a produce (making the last request one if none is)
      let produce = envs.find((e) => e['api'] === 'produce')
      if (!produce) {
        target['api'] = 'produce'
        target['body'] = seedBody(p, 'produce', w, tag)
        produce = target
      }
      const parts = (produce['body'] as { partitions: { batch: Uint8Array }[] }).partitions
      const part = p.pick(parts)
      {
        const d = damageBatch(p, part.batch)
        part.batch = d.batch
        how = d.how
      }
      bytes = concat(envs.map(envelopeFrame))
      break
    }
    case 4:
    case 5: {
      bytes = concat(envs.map(envelopeFrame))
      const n = p.range(1, 8)
      for (let i = 0; i < n; i++) bytes[p.int(bytes.length)] ^= 1 << p.int(8)
      how = `${n} bit flips`
      break
    }
    case 6: {
      // bit flips in the last frame's body only: framing survives, the message does not
      const head = concat(envs.slice(0, -1).map(envelopeFrame))
      const last = envelopeFrame(target)
      for (let i = p.range(1, 4); i > 0; i--) last[4 + p.int(last.length - 4)] ^= 1 << p.int(8)
      bytes = concat([head, last])
      how = 'body bit flips'
      break
    }
    case 7: {
      const whole = concat(envs.map(envelopeFrame))
      bytes = whole.subarray(0, p.int(whole.length))
      how = `truncated to ${bytes.length} of ${whole.length}`
      break
    }
    case 8: {
      const a = concat(envs.map(envelopeFrame))
      const other = makeInput(p, w, `${tag}s`).bytes
      bytes = concat([a.subarray(0, p.int(a.length + 1)), other.subarray(p.int(other.length + 1))])
      how = 'splice'
      break
    }
    case 9: {
      const frames = envs.map(envelopeFrame)
      const i = p.int(frames.length)
      const f = new Uint8Array(frames[i]!)
      const len = f.length - 4
      const choice = p.pick([0, 1, len - 1, len + 1, len + p.range(2, 50), Math.max(0, len - p.range(2, 50)), p.int(1 << 16), FRAME_MAX, FRAME_MAX + 1, 0xffff_ffff, p.nextU32()])
      new DataView(f.buffer).setUint32(0, Math.max(0, choice) >>> 0)
      frames[i] = f
      bytes = concat(frames)
      how = `length of frame ${i} = ${choice} (was ${len})`
      break
    }
    case 10: {
      const whole = concat(envs.map(envelopeFrame))
      const at = p.int(whole.length + 1)
      if (p.chance(0.5)) {
        bytes = concat([whole.subarray(0, at), randomBytes(p, p.range(1, 16)), whole.subarray(at)])
        how = 'insert'
      } else {
        bytes = concat([whole.subarray(0, at), whole.subarray(Math.min(whole.length, at + p.range(1, 16)))])
        how = 'delete'
      }
      break
    }
    case 11: {
      const head = concat(envs.slice(0, -1).map(envelopeFrame))
      bytes = concat([head, envelopeFrame(randomValue(p))])
      how = 'random msgpack value'
      break
    }
    case 12: {
      const head = p.chance(0.7) ? envelopeFrame(envs[0]!) : new Uint8Array(0)
      const g = randomBytes(p, p.range(1, 200))
      // half the time a plausible prefix in front of random contents
      if (g.length >= 4 && p.chance(0.5)) new DataView(g.buffer).setUint32(0, g.length - 4)
      bytes = concat([head, g])
      how = 'garbage'
      break
    }
    case 13:
    default: {
      // a whole envelope replaced by random values in its fields
      const env: Record<string, unknown> = { id: p.chance(0.8) ? p.range(0, 40) : randomValue(p), api: p.chance(0.8) ? p.pick(SEED_APIS) : randomValue(p), version: p.chance(0.8) ? 1 : randomValue(p), body: randomValue(p) }
      if (p.chance(0.2)) delete env[p.pick(['id', 'api', 'version', 'body'])]
      bytes = concat([...envs.slice(0, -1).map(envelopeFrame), envelopeFrame(env)])
      how = 'random envelope'
    }
  }
  const cuts: number[] = []
  if (p.chance(0.3)) for (let n = p.range(1, 4); n > 0; n--) cuts.push(p.int(bytes.length + 1))
  cuts.sort((a, b) => a - b)
  return { bytes, how, cuts }
}

function hex(b: Uint8Array, max = 600): string {
  return Buffer.from(b.subarray(0, max)).toString('hex') + (b.length > max ? `… (${b.length} bytes)` : '')
}

describe('hardening - fuzz', () => {
  it(`survives mutated frames over many connections while a good client works (seed ${FUZZ_SEED})`, async () => {
    const seedNote = `RAFTMQ_FUZZ_SEED=${FUZZ_SEED} RAFTMQ_FUZZ_MS=${FUZZ_MS}`
    await createTopic('fz', 3)
    await createTopic('good', 2)
    const producer = await admin.request('initProducerId', {})
    const world: FuzzWorld = { topics: [{ name: 'fz', partitions: 3 }, { name: 'good', partitions: 2 }, { name: 'nope', partitions: 1 }], producer }
    const known: Topics = { before: new Set((await admin.admin().listTopics()).map((t) => t.name)), created: new Set() }
    /** Every batch the fuzzer sent inside a frame that is a valid produce request, and that is itself a valid batch. */
    const validSent = new Set<string>()
    /** Fuzzer records the broker acknowledged: they must be stored where it said. */
    const fuzzAcks: { topic: string; partition: number; offset: number; value: Uint8Array | null }[] = []
    const stats = { inputs: 0, skipped: 0, closed: 0, answered: 0, codes: new Map<string, number>(), hows: new Map<string, number>() }
    const failures: string[] = []
    const deadline = Date.now() + FUZZ_MS
    const root = new Prng(FUZZ_SEED)

    // the well-behaved client: produces and fetches for the whole run
    const goodClient = new Client({ brokers: [`127.0.0.1:${port}`], clientId: 'good' })
    const acked: { partition: number; offset: number; value: string }[] = []
    const goodErrors: string[] = []
    let fuzzing = true
    const good = (async () => {
      const gp = root.fork()
      const producer = goodClient.producer()
      const consumer = goodClient.consumer()
      let seq = 0
      while (fuzzing) {
        try {
          const partition = gp.int(2)
          if (gp.chance(0.5)) {
            const value = `g-${seq++}`
            const r = await producer.send({ topic: 'good', partition, value })
            acked.push({ partition, offset: r.offset, value })
          } else if (gp.chance(0.6)) {
            const values = Array.from({ length: gp.range(1, 20) }, () => `g-${seq++}`)
            const r = await producer.sendBatch(values.map((value) => ({ topic: 'good', partition, value })), { atomic: gp.chance(0.5) })
            r.results.forEach((x, i) => {
              if ('offset' in x) acked.push({ partition, offset: x.offset, value: values[i]! })
              else goodErrors.push(`sendBatch ${values[i]}: ${x.error.code} ${x.error.message}`)
            })
          } else {
            const mine = acked.filter((a) => a.partition === partition)
            if (mine.length === 0) continue
            const from = gp.pick(mine)
            const page = await consumer.fetch({ topic: 'good', partition, offset: from.offset, maxMessages: 50 })
            const byOffset = new Map(mine.map((a) => [a.offset, a.value]))
            for (const m of page.messages) {
              const want = byOffset.get(m.offset)
              if (want !== undefined && dec.decode(m.value!) !== want) goodErrors.push(`fetch good/${partition}@${m.offset}: ${dec.decode(m.value!)} instead of ${want}`)
            }
            if (page.messages[0]?.offset !== from.offset) goodErrors.push(`fetch good/${partition}@${from.offset} began at ${page.messages[0]?.offset}`)
          }
        } catch (err) {
          goodErrors.push(`good client: ${err instanceof Error ? err.message : String(err)}`)
        }
      }
    })()

    const lane = async (li: number, p: Prng): Promise<void> => {
      for (let k = 0; Date.now() < deadline && failures.length === 0; k++) {
        const tag = `z${li}.${k}`
        const input = makeInput(p, world, tag)
        const pl = plan(input.bytes, known)
        if (pl.skip !== null) {
          stats.skipped++
          continue
        }
        stats.inputs++
        const kind = input.how.replace(/^\d+ /, '').split(/[:=]| \d| of /)[0]!
        stats.hows.set(kind, (stats.hows.get(kind) ?? 0) + 1)
        for (const e of pl.expects) {
          if (e.kind !== 'answer' || e.request.api !== 'produce') continue
          for (const part of e.request.body.partitions) if (checkBatch(part.batch).ok && decodeRecordBatch(part.batch).ok) validSent.add(batchKey(part.batch))
        }
        const where = (): string => `${seedNote} lane ${li} input ${k} (${input.how}); plan ${JSON.stringify({ ...pl, expects: pl.expects.map((e) => (e.kind === 'answer' ? { id: e.id, api: e.api, required: e.required } : e)) })}; bytes ${hex(input.bytes)}`
        let c: Raw
        try {
          c = await Raw.open(port)
        } catch (err) {
          failures.push(`cannot connect: ${String(err)}; ${where()}`)
          return
        }
        // write in pieces sometimes, so frames and prefixes span reads
        let at = 0
        for (const cut of [...input.cuts, input.bytes.length]) {
          if (cut > at) c.send(input.bytes.subarray(at, cut))
          at = Math.max(at, cut)
          if (input.cuts.length > 0) await new Promise((r) => setImmediate(r))
        }
        const required = pl.expects.filter((e) => e.kind === 'error' || e.required)
        let matched = new Set<number>()
        /** Whether response `r` can be the answer `e` asks for. */
        const fits = (r: Resp, e: Expect): boolean => {
          if (e.id !== r.id) return false
          if (e.kind === 'error') return r.ok === false && r.error?.code === e.code && validateResponse(r, undefined).ok
          return validateResponse(r, e.api).ok
        }
        /**
         * Pairs responses with expectations (a bipartite matching: a client may repeat an id,
         * and then only a pairing tells which answer is which), required expectations first
         * so that they are covered whenever any pairing covers them. Returns a complaint for a
         * response no pairing explains; leaves the covered expectations in `matched`.
         */
        const match = (): string | null => {
          const responses: Resp[] = []
          for (const raw of c.received) {
            const r = raw as Resp
            if (r.id !== 0) {
              responses.push(r)
              continue
            }
            if (pl.fatal === null) return `unexpected connection-level error ${JSON.stringify(r)}`
            if (!validateResponse(r, undefined).ok || r.error?.code !== pl.fatal) return `connection error ${JSON.stringify(r)}, expected ${pl.fatal}`
          }
          const expOfResp = new Array<number>(responses.length).fill(-1)
          const augment = (j: number, seen: Set<number>): boolean => {
            for (let i = 0; i < responses.length; i++) {
              if (seen.has(i) || !fits(responses[i]!, pl.expects[j]!)) continue
              seen.add(i)
              if (expOfResp[i]! < 0 || augment(expOfResp[i]!, seen)) {
                expOfResp[i] = j
                return true
              }
            }
            return false
          }
          const order = pl.expects.map((_, j) => j).sort((a, b) => Number(required.includes(pl.expects[b]!)) - Number(required.includes(pl.expects[a]!)))
          for (const j of order) augment(j, new Set())
          matched = new Set(expOfResp.filter((j) => j >= 0))
          const stray = expOfResp.indexOf(-1)
          if (stray < 0) return null
          return `a response that answers nothing sent, or not as the protocol says: ${JSON.stringify(responses[stray], (_, v) => (v instanceof Uint8Array ? `<${v.length} bytes>` : v)).slice(0, 600)}`
        }
        const done = (): boolean =>
          c.garbled.length > 0 ||
          match() !== null ||
          (required.every((e) => matched.has(pl.expects.indexOf(e))) && (!pl.close || c.closed) && (pl.fatal === null || c.received.some((r) => (r as Resp).id === 0)))
        const ok = await c.until(done, 5_000 + pl.waitMs)
        const complaint = match()
        if (c.garbled.length > 0) failures.push(`garbled response: ${c.garbled[0]}; ${where()}`)
        else if (complaint !== null) failures.push(`${complaint}; ${where()}`)
        else if (!ok) {
          const missing = required.filter((e) => !matched.has(pl.expects.indexOf(e)))
          failures.push(`hang: after ${5_000 + pl.waitMs} ms missing ${JSON.stringify(missing.map((e) => ({ id: e.id, kind: e.kind, code: e.kind === 'error' ? e.code : e.api })))}, closed ${c.closed} (close expected ${pl.close}); ${where()}`)
        } else if (!pl.close && c.closed) failures.push(`the server closed a connection it should have kept; ${where()}`)
        // INTERNAL is a handler that threw: a bug whatever the input
        for (const raw of c.received) {
          const r = raw as Resp
          const codes: string[] = []
          if (r.error) codes.push(r.error.code)
          for (const part of (r.ok && Array.isArray(r.body?.partitions) ? r.body.partitions : []) as { error?: WireErr; errors?: { error: WireErr }[] }[]) {
            if (part.error) codes.push(part.error.code)
            for (const x of part.errors ?? []) codes.push(x.error.code)
          }
          for (const code of codes) stats.codes.set(code, (stats.codes.get(code) ?? 0) + 1)
          if (codes.includes('INTERNAL')) failures.push(`INTERNAL error: ${JSON.stringify(r).slice(0, 400)}; ${where()}`)
          // what the broker acknowledged must be stored as sent
          const e = pl.expects.find((x) => x.id === r.id && x.kind === 'answer' && x.api === 'produce')
          if (r.ok && e && e.kind === 'answer' && e.request.api === 'produce' && pl.expects.filter((x) => x.id === r.id).length === 1) {
            const req = e.request
            r.body.partitions.forEach((part: { topic: string; partition: number; count?: number }, pi: number) => {
              const sent = req.body.partitions[pi]!
              const d = decodeRecordBatch(sent.batch)
              if (!d.ok || part.count === undefined) return
              const results = produceResults({ ...part, count: part.count })
              results.forEach((x, ri) => {
                if ('offset' in x && !x.duplicate && d.value.records.length === results.length) {
                  fuzzAcks.push({ topic: part.topic, partition: part.partition, offset: x.offset, value: d.value.records[ri]!.value })
                }
              })
            })
          }
        }
        if (c.closed) stats.closed++
        if (c.received.length > 0) stats.answered++
        c.destroy()
      }
    }

    const lanes = Array.from({ length: FUZZ_LANES }, (_, i) => lane(i, root.fork()))
    await Promise.all(lanes)
    fuzzing = false
    await good
    console.log(
      `fuzz: ${seedNote}: ${stats.inputs} inputs (${stats.skipped} skipped), ${stats.answered} answered, ${stats.closed} closed by the server; ` +
        `good client: ${acked.length} acknowledged; mutations ${JSON.stringify(Object.fromEntries(stats.hows))}; codes ${JSON.stringify(Object.fromEntries(stats.codes))}`,
    )
    expect(failures, `${seedNote}: ${failures[0]}`).toEqual([])
    expect(goodErrors, `${seedNote}: ${goodErrors[0]}`).toEqual([])
    expect(stats.inputs).toBeGreaterThan(1_000)

    // the node still serves, old and new clients alike
    await stillServes()
    const topics = (await goodClient.admin().listTopics()).map((t) => t)
    expect(topics.map((t) => t.name)).toEqual(expect.arrayContaining(['fz', 'good']))

    // every acknowledged good message is stored exactly once, in order, at its offset
    const stored = new Map<string, Map<number, Uint8Array | null>>()
    let fuzzBatches = 0
    for (const t of topics) {
      for (let partition = 0; partition < t.partitions; partition++) {
        const all = await readAll(goodClient, t.name, partition)
        stored.set(`${t.name}/${partition}`, new Map(all.records.map((r) => [r.offset, r.value])))
        for (const b of all.batches) {
          const d = decodeRecordBatch(b)
          const isGood = t.name === 'good' && d.ok && d.value.records.every((r) => r.value !== null && dec.decode(r.value).startsWith('g-'))
          // anything else in the fuzzed topics came from a valid produce the fuzzer sent
          const fuzzed = t.name === 'fz' || t.name === 'good' || !known.before.has(t.name)
          if (!isGood && fuzzed && !validSent.has(batchKey(b))) {
            throw new Error(`${seedNote}: ${t.name}/${partition} stores a batch no valid request carried: ${hex(b)}`)
          }
          if (!isGood && fuzzed) fuzzBatches++
        }
      }
    }
    for (const partition of [0, 1]) {
      const log = stored.get(`good/${partition}`)!
      const mine = acked.filter((a) => a.partition === partition)
      // sent one after another, acknowledged in that order: offsets increase in send order
      mine.forEach((a, i) => i > 0 && expect(a.offset, `${seedNote}: good/${partition} ack ${i}`).toBeGreaterThan(mine[i - 1]!.offset))
      for (const a of mine) expect(log.get(a.offset) && dec.decode(log.get(a.offset)!), `${seedNote}: good/${partition}@${a.offset}`).toBe(a.value)
      const goodInLog = [...log.entries()].filter(([, v]) => v !== null && dec.decode(v).startsWith('g-')).map(([o, v]) => [o, dec.decode(v!)])
      expect(goodInLog, `${seedNote}: good/${partition} holds exactly the acknowledged messages, in order`).toEqual(mine.sort((x, y) => x.offset - y.offset).map((a) => [a.offset, a.value]))
    }
    for (const a of fuzzAcks) {
      const log = stored.get(`${a.topic}/${a.partition}`)
      if (!log) continue // a topic the fuzzer deleted
      const v = log.get(a.offset)
      expect(v === undefined ? 'missing' : v === null ? null : Buffer.from(v).toString('hex'), `${seedNote}: fuzz ack ${a.topic}/${a.partition}@${a.offset}`).toBe(
        a.value === null ? null : Buffer.from(a.value).toString('hex'),
      )
    }
    console.log(
      `fuzz: verified ${topics.length} topics (${topics.filter((t) => !known.before.has(t.name)).length} created by the fuzzer), ` +
        `${fuzzBatches} stored fuzzer batches all carried by valid requests, ${fuzzAcks.length} fuzzer acknowledgements at their offsets, ` +
        `${acked.length} good acknowledgements exactly once`,
    )
    await goodClient.close()
  }, FUZZ_MS + 60_000)
})
