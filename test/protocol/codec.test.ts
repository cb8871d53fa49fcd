import { describe, expect, it } from 'vitest'
import { Prng, limits } from '../../src/base/index.js'
import { decodeMessage, encodeMessage, encodeMessageFrame } from '../../src/protocol/codec.js'
import { FRAME_HEADER_BYTES, FrameDecoder } from '../../src/protocol/frame.js'

const decoded = (bytes: Uint8Array): unknown => {
  const r = decodeMessage(bytes)
  if (!r.ok) throw new Error(r.error.message)
  return r.value
}

function garbage(prng: Prng, n: number): Uint8Array {
  const b = new Uint8Array(n)
  for (let i = 0; i < n; i++) b[i] = prng.int(256)
  return b
}

describe('codec - round trips', () => {
  it('round-trips the value kinds the protocol uses', () => {
    const value = {
      id: 4_294_967_295,
      api: 'produce',
      small: -5,
      offset: Number.MAX_SAFE_INTEGER,
      ratio: 0.25,
      flag: true,
      none: null,
      text: 'héllo ✓',
      list: [1, 'two', [3], { four: 4 }],
      empty: {},
    }
    expect(decoded(encodeMessage(value))).toEqual(value)
  })

  it('returns an exact-size buffer the caller owns, untouched by later encodes', () => {
    const a = encodeMessage({ n: 1, s: 'first' })
    const copy = Uint8Array.from(a)
    expect(a.byteOffset).toBe(0)
    expect(a.buffer.byteLength).toBe(a.length)
    for (let i = 0; i < 2000; i++) encodeMessage({ n: i, s: 'x'.repeat(i % 50) })
    expect([...a]).toEqual([...copy])
  })

  it('decodes bin fields as views into the message, not copies', () => {
    const batch = new Uint8Array([1, 2, 3, 4])
    const bytes = encodeMessage({ batch, more: [new Uint8Array([9])] })
    const v = decoded(bytes) as { batch: Uint8Array; more: Uint8Array[] }
    expect(v.batch).toBeInstanceOf(Uint8Array)
    expect([...v.batch]).toEqual([1, 2, 3, 4])
    expect(v.batch.buffer).toBe(bytes.buffer)
    expect(v.more[0]!.buffer).toBe(bytes.buffer)
  })

  it('writes no property whose value is undefined', () => {
    const bytes = encodeMessage({ a: 1, b: undefined })
    expect(Object.keys(decoded(bytes) as object)).toEqual(['a'])
    expect(bytes.length).toBe(encodeMessage({ a: 1 }).length)
  })

  it('decodes 64-bit integers as numbers', () => {
    // 0xcf: uint64 2^40, 0xd3: int64 -1
    expect(decoded(new Uint8Array([0xcf, 0, 0, 1, 0, 0, 0, 0, 0]))).toBe(2 ** 40)
    expect(decoded(new Uint8Array([0xd3, 255, 255, 255, 255, 255, 255, 255, 255]))).toBe(-1)
  })

  it('does not let a __proto__ key reach the prototype', () => {
    // {"__proto__": {"polluted": 1}} written by hand
    const key = [...Buffer.from('__proto__')]
    const bytes = new Uint8Array([0x81, 0xa0 | key.length, ...key, 0x81, 0xa8, ...Buffer.from('polluted'), 1])
    const v = decoded(bytes) as Record<string, unknown>
    expect(Object.getPrototypeOf(v)).toBe(Object.prototype)
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined()
  })
})

describe('codec - frames', () => {
  it('encodeMessageFrame writes a whole frame the decoder reads back', () => {
    const frames: Uint8Array[] = []
    const d = new FrameDecoder({ frame: (b) => void frames.push(b), error: () => {} })
    const values = [{ a: 1 }, { b: 'two' }, { c: new Uint8Array(3000) }]
    const encoded = values.map((v) => {
      const r = encodeMessageFrame(v)
      expect(r.ok).toBe(true)
      return r.ok ? r.value : new Uint8Array(0)
    })
    expect(encoded[0]!.length).toBe(FRAME_HEADER_BYTES + encodeMessage(values[0]).length)
    const copies = encoded.map((e) => Uint8Array.from(e))
    // later encodes must not overwrite frames still queued for a write
    for (let i = 0; i < 3000; i++) encodeMessageFrame({ i, pad: 'y'.repeat(i % 100) })
    encoded.forEach((e, i) => expect(Buffer.from(e).equals(copies[i]!)).toBe(true))
    for (const e of encoded) d.push(e)
    const back = frames.map((f) => decoded(f)) as [unknown, unknown, { c: Uint8Array }]
    expect(back.slice(0, 2)).toEqual(values.slice(0, 2))
    expect(Uint8Array.from(back[2].c)).toEqual(new Uint8Array(3000))
  })

  it('refuses a body over the peer frameBytesMax with FRAME_TOO_LARGE', () => {
    const r = encodeMessageFrame({ pad: new Uint8Array(100) }, 50)
    expect(r.ok).toBe(false)
    if (!r.ok) {
      expect(r.error.code).toBe('FRAME_TOO_LARGE')
      expect(r.error.message).toMatch(/^a frame of \d+ bytes exceeds the limit of 50 bytes$/)
    }
    expect(encodeMessageFrame({ pad: new Uint8Array(100) }).ok).toBe(true)
    expect(limits.protocol.frameBytesMax).toBeGreaterThan(100)
  })
})

describe('codec - garbage', () => {
  const bad = (bytes: number[] | Uint8Array): string => {
    const r = decodeMessage(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes))
    expect(r.ok).toBe(false)
    return r.ok ? '' : `${r.error.code}: ${r.error.message}`
  }

  it('refuses an empty message, truncation, trailing bytes and unknown extensions as INVALID_REQUEST', () => {
    expect(bad([])).toBe('INVALID_REQUEST: invalid request: an empty message')
    expect(bad([0x92, 1])).toMatch(/^INVALID_REQUEST: invalid request: not a msgpack message/)
    expect(bad([1, 2])).toMatch(/^INVALID_REQUEST: /)
    expect(bad([0xd4, 0x33, 0])).toMatch(/^INVALID_REQUEST: /)
    // the structured-clone extensions are off
    expect(bad([0xd6, 0x69, 0, 0, 0, 1, 0x90])).toMatch(/^INVALID_REQUEST: /)
  })

  it('decodes some garbage to values no protocol type has, for the validators to refuse', () => {
    // 0xc1, the one byte msgpack never uses, comes out as a marker object
    const c1 = decodeMessage(new Uint8Array([0xc1]))
    expect(c1.ok && Object.getPrototypeOf(c1.value) !== Object.prototype).toBe(true)
    // fixext 1 of type 0: undefined
    const undef = decodeMessage(new Uint8Array([0xd4, 0, 0]))
    expect(undef).toEqual({ ok: true, value: undefined })
  })

  it('refuses nesting deep enough to overflow the stack', () => {
    expect(bad(new Uint8Array(1_000_000).fill(0x91))).toMatch(/^INVALID_REQUEST: /)
    // and decodes normally afterwards
    expect(decoded(encodeMessage({ ok: 1 }))).toEqual({ ok: 1 })
  })

  it('refuses a huge declared length without allocating it', () => {
    expect(bad([0xdd, 0xff, 0xff, 0xff, 0xff, 1])).toMatch(/^INVALID_REQUEST: /) // array32 of 4G items
    expect(bad([0xdf, 0xff, 0xff, 0xff, 0xff])).toMatch(/^INVALID_REQUEST: /) // map32
    expect(bad([0xc6, 0xff, 0xff, 0xff, 0xff])).toMatch(/^INVALID_REQUEST: /) // bin32
    expect(bad([0xdb, 0xff, 0xff, 0xff, 0xff])).toMatch(/^INVALID_REQUEST: /) // str32
  })

  it('never throws on 20,000 seeded random byte strings, and keeps messages short', () => {
    const prng = new Prng(20_240_601)
    let refused = 0
    for (let i = 0; i < 20_000; i++) {
      const r = decodeMessage(garbage(prng, prng.range(0, prng.chance(0.1) ? 2000 : 40)))
      if (!r.ok) {
        refused++
        expect(r.error.code).toBe('INVALID_REQUEST')
        expect(r.error.message.length).toBeLessThan(300)
      }
    }
    expect(refused).toBeGreaterThan(1000)
    expect(decoded(encodeMessage([1, 2]))).toEqual([1, 2])
  })

  it('never throws on 20,000 seeded mutations of valid messages', () => {
    const prng = new Prng(7)
    const base = encodeMessage({
      id: 12,
      api: 'produce',
      version: 1,
      body: { timeoutMs: 1000, partitions: [{ topic: 'orders', partition: 0, batch: new Uint8Array(40) }] },
    })
    for (let i = 0; i < 20_000; i++) {
      const m = Uint8Array.from(base)
      for (let k = prng.range(1, 4); k > 0; k--) m[prng.int(m.length)] = prng.int(256)
      const cut = prng.chance(0.2) ? m.subarray(0, prng.int(m.length)) : m
      decodeMessage(cut)
    }
    expect(decoded(base)).toMatchObject({ id: 12 })
  })
})
