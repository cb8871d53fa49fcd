/**
 * The peer wire format without sockets: frames cut out of any chunking of the stream,
 * limits refused before buffering, the channel-0 messages round-tripped and validated,
 * and the accepting side's answer to each kind of HELLO.
 */
import { describe, expect, it } from 'vitest'
import { AssertionError, Prng } from '../../src/base/index.js'
import { answerHello } from '../../src/broker/peer/handshake.js'
import { backoffMs } from '../../src/broker/peer/dialer.js'
import {
  ControlType,
  PeerFrameDecoder,
  decodeHello,
  decodeHelloOk,
  decodeHelloRefused,
  encodeFrame,
  encodeHello,
  encodeHelloOk,
  encodeHelloRefused,
} from '../../src/broker/peer/wire.js'
import type { DecodeErrorCode, Hello } from '../../src/broker/peer/wire.js'

interface Recorded {
  frames: { channel: number; payload: Uint8Array }[]
  errors: { code: DecodeErrorCode; message: string }[]
  decoder: PeerFrameDecoder
}

function recorder(frameBytesMax: number): Recorded {
  const r: Recorded = { frames: [], errors: [], decoder: undefined as unknown as PeerFrameDecoder }
  r.decoder = new PeerFrameDecoder(
    {
      // copied, so a decoder that hands out a view of memory it later reuses is caught
      frame: (channel, payload) => void r.frames.push({ channel, payload: Uint8Array.from(payload) }),
      error: (code, message) => void r.errors.push({ code, message }),
    },
    frameBytesMax,
  )
  return r
}

function bytes(prng: Prng, n: number): Uint8Array {
  const b = new Uint8Array(n)
  for (let i = 0; i < n; i++) b[i] = prng.int(256)
  return b
}

function hex(f: { channel: number; payload: Uint8Array }): string {
  return `${f.channel}:${Buffer.from(f.payload).toString('hex')}`
}

const hello: Hello = { versionMin: 1, versionMax: 1, clusterId: 'c1', from: 1, to: 2 }
const local = { nodeId: 2, clusterId: 'c1', peers: new Map([[1, {}], [3, {}]]) }

describe('peer wire - frames', () => {
  const prng = new Prng(7)
  const sent = [0, 1, 3, 4, 5, 0, 17, 300, 70_000, 2, 65_536].map((n, i) => ({ channel: (i * 37) % 256, payload: bytes(prng, n) }))
  const stream = Buffer.concat(sent.map((f) => encodeFrame(f.channel, f.payload)))

  it('the stream in one chunk, byte by byte, and in random cuts gives back the same frames', () => {
    const chunkings: Uint8Array[][] = [[stream], [...stream].map((b) => Uint8Array.of(b))]
    for (let seed = 1; seed <= 20; seed++) {
      const p = new Prng(seed)
      const cuts: Uint8Array[] = []
      for (let at = 0; at < stream.length; ) {
        const n = Math.min(stream.length - at, 1 + p.int(p.int(2) === 0 ? 8 : 100_000))
        cuts.push(stream.subarray(at, at + n))
        at += n
      }
      chunkings.push(cuts)
    }
    for (const chunks of chunkings) {
      const r = recorder(1 << 20)
      let refused = 0
      for (const c of chunks) if (!r.decoder.push(c)) refused++
      expect(refused).toBe(0)
      expect(r.errors).toEqual([])
      // compared as hex: element-wise equality of 140 KB of typed arrays takes seconds
      expect(r.frames.map(hex)).toEqual(sent.map(hex))
      expect(r.decoder.bufferedBytes).toBe(0)
    }
  })

  it('refuses a length over the limit from the prefix alone, before buffering any of it', () => {
    const r = recorder(1000)
    // 1001 payload bytes claimed; only the prefix and channel byte ever arrive
    expect(r.decoder.push(Uint8Array.of(0, 0, 0x03, 0xea, 1))).toBe(false)
    expect(r.errors.map((e) => e.code)).toEqual(['FRAME_TOO_LARGE'])
    expect(r.decoder.bufferedBytes).toBe(0)
    expect(r.decoder.push(encodeFrame(1, new Uint8Array(1)))).toBe(false)
    expect(r.frames).toEqual([])
  })

  it('accepts a payload of exactly frameBytesMax, and a prefix split across chunks is checked too', () => {
    const r = recorder(1000)
    const frame = encodeFrame(9, new Uint8Array(1000).fill(5))
    r.decoder.push(frame.subarray(0, 2))
    r.decoder.push(frame.subarray(2))
    expect(r.frames).toEqual([{ channel: 9, payload: new Uint8Array(1000).fill(5) }])
    const over = encodeFrame(9, new Uint8Array(1001))
    r.decoder.push(over.subarray(0, 3))
    expect(r.errors).toEqual([])
    r.decoder.push(over.subarray(3, 4))
    expect(r.errors.map((e) => e.code)).toEqual(['FRAME_TOO_LARGE'])
  })

  it('a lowered or raised limit applies to the next prefix read, even within one chunk', () => {
    const r = recorder(10)
    const joined = Buffer.concat([encodeFrame(0, new Uint8Array(5)), encodeFrame(1, new Uint8Array(50))])
    let raised = false
    const d = new PeerFrameDecoder(
      {
        frame: (channel) => {
          r.frames.push({ channel, payload: new Uint8Array(0) })
          if (!raised) d.frameBytesMax = 100
          raised = true
        },
        error: (code, message) => void r.errors.push({ code, message }),
      },
      10,
    )
    d.push(joined)
    expect(r.frames.map((f) => f.channel)).toEqual([0, 1])
    expect(r.errors).toEqual([])
  })

  it('a zero length (no channel byte) breaks the stream', () => {
    const r = recorder(100)
    r.decoder.push(Uint8Array.of(0, 0, 0, 0))
    expect(r.errors.map((e) => e.code)).toEqual(['EMPTY_FRAME'])
  })
})

describe('peer wire - channel-0 messages', () => {
  it('HELLO, HELLO_OK and HELLO_REFUSED round-trip', () => {
    expect(decodeHello(encodeHello(hello))).toEqual({ ok: true, value: hello })
    const unicode = { ...hello, clusterId: 'ü'.repeat(64) }
    expect(decodeHello(encodeHello(unicode))).toEqual({ ok: true, value: unicode })
    expect(decodeHelloOk(encodeHelloOk(1))).toEqual({ ok: true, value: 1 })
    expect(decodeHelloRefused(encodeHelloRefused({ code: 'WRONG_NODE', message: 'nö' }))).toEqual({ ok: true, value: { code: 'WRONG_NODE', message: 'nö' } })
  })

  it('a refusal message is cut to 1024 bytes without splitting a character', () => {
    const r = decodeHelloRefused(encodeHelloRefused({ code: 'BAD_HANDSHAKE', message: 'x' + 'é'.repeat(2000) }))
    expect(r.ok && Buffer.byteLength(r.value.message) <= 1024 && r.value.message.length === 512).toBe(true)
  })

  it('a HELLO that is not one is BAD_HANDSHAKE; a version range that misses ours is UNSUPPORTED_VERSION', () => {
    const good = encodeHello(hello)
    const code = (b: Uint8Array): string => {
      const r = decodeHello(b)
      return r.ok ? 'ok' : r.error.code
    }
    expect(code(good)).toBe('ok')
    expect(code(good.subarray(0, 8))).toBe('BAD_HANDSHAKE') // truncated before the version pair ends
    expect(code(good.subarray(0, good.length - 1))).toBe('BAD_HANDSHAKE') // cluster id truncated
    expect(code(Buffer.concat([good, Uint8Array.of(0)]))).toBe('BAD_HANDSHAKE') // trailing bytes from a version-1-only dialer
    const magic = Buffer.from(good)
    magic[2] = 0x58
    expect(code(magic)).toBe('BAD_HANDSHAKE')
    const type = Buffer.from(good)
    type[0] = ControlType.PING
    expect(code(type)).toBe('BAD_HANDSHAKE')
    const badUtf8 = Buffer.from(encodeHello({ ...hello, clusterId: 'ab' }))
    badUtf8[badUtf8.length - 1] = 0xff
    expect(code(badUtf8)).toBe('BAD_HANDSHAKE')
    expect(code(encodeHello({ ...hello, versionMin: 2, versionMax: 1 }))).toBe('BAD_HANDSHAKE')
    expect(code(encodeHello({ ...hello, versionMin: 2, versionMax: 3 }))).toBe('UNSUPPORTED_VERSION')
    expect(code(encodeHello({ ...hello, versionMin: 0, versionMax: 0 }))).toBe('UNSUPPORTED_VERSION')
    // a newer dialer may append fields, and the version pair alone decides when nothing is shared
    expect(code(Buffer.concat([encodeHello({ ...hello, versionMax: 2 }), Uint8Array.of(1, 2, 3)]))).toBe('ok')
    expect(code(encodeHello({ ...hello, versionMin: 2, versionMax: 3 }).subarray(0, 9))).toBe('UNSUPPORTED_VERSION')
  })

  it('HELLO_OK and HELLO_REFUSED that are malformed are refused as values, not thrown', () => {
    expect(decodeHelloOk(Uint8Array.of(ControlType.HELLO_OK, 0)).ok).toBe(false)
    expect(decodeHelloRefused(Uint8Array.of(ControlType.HELLO_REFUSED, 40, 65)).ok).toBe(false)
    const unknown = Buffer.from(encodeHelloRefused({ code: 'WRONG_NODE', message: '' }))
    unknown[2] = 0x58 // 'XRONG_NODE'
    expect(decodeHelloRefused(unknown).ok).toBe(false)
    expect(decodeHelloRefused(Buffer.concat([encodeHelloRefused({ code: 'WRONG_NODE', message: 'm' }), Uint8Array.of(0)])).ok).toBe(false)
  })

  it('encoding asserts what the sender controls: a cluster id over 64 characters', () => {
    expect(() => encodeHello({ ...hello, clusterId: 'x'.repeat(65) })).toThrow(AssertionError)
  })
})

describe('peer wire - the answer to a HELLO', () => {
  const answer = (h: Partial<Hello>): string => {
    const r = answerHello(encodeHello({ ...hello, ...h }), local)
    return r.ok ? `ok v${r.value.version} from ${r.value.peer}` : r.error.code
  }

  it('accepts a known lower peer of our cluster that meant us, at the highest shared version', () => {
    expect(answer({})).toBe('ok v1 from 1')
    expect(answer({ versionMax: 5 })).toBe('ok v1 from 1')
  })

  it('names the first thing that is wrong', () => {
    expect(answer({ clusterId: 'c2' })).toBe('WRONG_CLUSTER')
    expect(answer({ to: 3 })).toBe('WRONG_NODE')
    expect(answer({ from: 4 })).toBe('UNKNOWN_NODE')
    expect(answer({ from: 2 })).toBe('UNKNOWN_NODE') // itself
    expect(answer({ from: 3 })).toBe('BAD_HANDSHAKE') // a higher id must not dial
    expect(answer({ versionMin: 2, versionMax: 2, clusterId: 'c2' })).toBe('UNSUPPORTED_VERSION')
    expect(answer({ clusterId: 'c2', to: 3, from: 4 })).toBe('WRONG_CLUSTER')
  })
})

describe('peer wire - backoff', () => {
  it('doubles from min to max, with at most half taken off at random', () => {
    expect([0, 1, 2, 3, 10, 100].map((a) => backoffMs(a, 50, 2000, () => 0.999999))).toEqual([50, 100, 200, 400, 2000, 2000].map((v) => expect.closeTo(v, 2)))
    expect([0, 1, 10].map((a) => backoffMs(a, 50, 2000, () => 0))).toEqual([25, 50, 1000])
  })
})
