import { describe, expect, it } from 'vitest'
import { AssertionError, Prng, limits } from '../../src/base/index.js'
import type { WireError } from '../../src/protocol/errors.js'
import {
  FRAME_HEADER_BYTES,
  FrameDecoder,
  encodeFrame,
  encodeFrames,
  writeFrameHeader,
} from '../../src/protocol/frame.js'

/** A sink that records everything, copying bodies so later reuse of chunks cannot hide a bug. */
function recorder(): { frames: Uint8Array[]; errors: WireError[]; decoder: (max?: number) => FrameDecoder } {
  const frames: Uint8Array[] = []
  const errors: WireError[] = []
  const sink = { frame: (b: Uint8Array) => void frames.push(Uint8Array.from(b)), error: (e: WireError) => void errors.push(e) }
  return { frames, errors, decoder: (max?: number) => new FrameDecoder(sink, max === undefined ? {} : { frameBytesMax: max }) }
}

function body(prng: Prng, n: number): Uint8Array {
  const b = new Uint8Array(n)
  for (let i = 0; i < n; i++) b[i] = prng.int(256)
  return b
}

/** Frames of awkward sizes: empty, shorter and longer than a prefix, and bigger than a chunk. */
function sampleBodies(seed: number): Uint8Array[] {
  const prng = new Prng(seed)
  return [0, 1, 3, 4, 5, 0, 0, 17, 300, 70_000, 2, 0, 65_536].map((n) => body(prng, n))
}

function feed(decoder: FrameDecoder, stream: Uint8Array, cuts: readonly number[]): void {
  let from = 0
  for (const cut of [...cuts, stream.length]) {
    decoder.push(stream.subarray(from, cut))
    from = cut
  }
}

function randomCuts(prng: Prng, length: number): number[] {
  const cuts: number[] = []
  let at = 0
  while (at < length) {
    // mostly small chunks, sometimes large ones, so prefixes and bodies split everywhere
    at += prng.chance(0.2) ? prng.range(1, 100_000) : prng.range(1, 8)
    if (at < length) cuts.push(at)
  }
  return cuts
}

describe('frame - encoding', () => {
  it('writes a big-endian u32 length before the body', () => {
    expect([...encodeFrame(new Uint8Array([7, 8, 9]))]).toEqual([0, 0, 0, 3, 7, 8, 9])
    expect([...encodeFrame(new Uint8Array(0))]).toEqual([0, 0, 0, 0])
    const t = new Uint8Array(6)
    writeFrameHeader(t, 1, 0x01_02_03_04)
    expect([...t]).toEqual([0, 1, 2, 3, 4, 0])
    writeFrameHeader(t, 2, 0xffff_ffff)
    expect([...t.subarray(2)]).toEqual([255, 255, 255, 255])
  })

  it('encodeFrames coalesces frames into one buffer equal to their concatenation', () => {
    const bodies = sampleBodies(1)
    const all = encodeFrames(bodies)
    const parts = bodies.map(encodeFrame)
    expect(all.length).toBe(parts.reduce((n, p) => n + p.length, 0))
    expect(Buffer.from(all).equals(Buffer.concat(parts))).toBe(true)
    expect(encodeFrames([]).length).toBe(0)
  })

  it('refuses what the prefix cannot express or a header that does not fit (bugs)', () => {
    expect(() => writeFrameHeader(new Uint8Array(4), 0, 2 ** 32)).toThrow(AssertionError)
    expect(() => writeFrameHeader(new Uint8Array(4), 0, -1)).toThrow(AssertionError)
    expect(() => writeFrameHeader(new Uint8Array(4), 1, 1)).toThrow(AssertionError)
  })
})

describe('frame - splitting', () => {
  const bodies = sampleBodies(2)
  const stream = encodeFrames(bodies)
  const expectFrames = (got: Uint8Array[]): void => {
    expect(got.length).toBe(bodies.length)
    got.forEach((g, i) => expect(Buffer.from(g).equals(Buffer.from(bodies[i]!)), `frame ${i}`).toBe(true))
  }

  it('decodes the stream pushed whole', () => {
    const r = recorder()
    r.decoder().push(stream)
    expectFrames(r.frames)
    expect(r.errors).toEqual([])
  })

  it('decodes the stream pushed one byte at a time', () => {
    const r = recorder()
    const d = r.decoder()
    for (let i = 0; i < stream.length; i++) d.push(stream.subarray(i, i + 1))
    expectFrames(r.frames)
    expect(d.bufferedBytes).toBe(0)
  })

  it('decodes a small stream cut in two at every position, and in three at every pair', () => {
    const small = encodeFrames([new Uint8Array([1, 2, 3]), new Uint8Array(0), new Uint8Array([4]), new Uint8Array(9).fill(5)])
    const want = [[1, 2, 3], [], [4], [5, 5, 5, 5, 5, 5, 5, 5, 5]]
    for (let a = 0; a <= small.length; a++) {
      for (let b = a; b <= small.length; b++) {
        const r = recorder()
        feed(r.decoder(), small, [a, b])
        expect(r.frames.map((f) => [...f]), `cuts ${a},${b}`).toEqual(want)
      }
    }
  })

  it('decodes the same frames under 300 seeded random chunkings', () => {
    for (let seed = 0; seed < 300; seed++) {
      const r = recorder()
      const d = r.decoder()
      feed(d, stream, randomCuts(new Prng(seed), stream.length))
      expectFrames(r.frames)
      expect(d.bufferedBytes, `seed ${seed}`).toBe(0)
    }
  })

  it('delivers zero-length frames as empty bodies', () => {
    const r = recorder()
    r.decoder().push(new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 9]))
    expect(r.frames.map((f) => [...f])).toEqual([[], [], [9]])
  })

  it('holds a partial frame and counts what it holds', () => {
    const r = recorder()
    const d = r.decoder()
    d.push(new Uint8Array([0, 0]))
    expect(d.bufferedBytes).toBe(2)
    d.push(new Uint8Array([0, 5, 1, 2]))
    expect(d.bufferedBytes).toBe(2)
    expect(r.frames).toEqual([])
    d.push(new Uint8Array([3, 4, 5, 0]))
    expect(r.frames.map((f) => [...f])).toEqual([[1, 2, 3, 4, 5]])
    expect(d.bufferedBytes).toBe(1)
  })
})

describe('frame - copies', () => {
  it('hands out a view of the chunk when the frame lies inside it', () => {
    const chunk = encodeFrames([new Uint8Array([1, 2]), new Uint8Array([3])])
    const got: Uint8Array[] = []
    new FrameDecoder({ frame: (b) => void got.push(b), error: () => {} }).push(chunk)
    expect(got.map((b) => b.buffer === chunk.buffer)).toEqual([true, true])
    expect(got[1]!.byteOffset).toBe(chunk.byteOffset + 2 * FRAME_HEADER_BYTES + 2)
  })

  it('copies a frame whose body spans chunks, but not one whose prefix alone does', () => {
    const got: Uint8Array[] = []
    const d = new FrameDecoder({ frame: (b) => void got.push(b), error: () => {} })
    const a = new Uint8Array([0, 0, 0, 3, 1])
    const b = new Uint8Array([2, 3, 0, 0])
    const c = new Uint8Array([0, 2, 7, 7])
    d.push(a)
    d.push(b)
    d.push(c)
    expect(got.map((x) => [...x])).toEqual([[1, 2, 3], [7, 7]])
    expect(got[0]!.buffer === a.buffer || got[0]!.buffer === b.buffer).toBe(false)
    expect(got[1]!.buffer).toBe(c.buffer)
  })
})

describe('frame - limits', () => {
  it('accepts a frame of exactly frameBytesMax and refuses one byte more with FRAME_TOO_LARGE', () => {
    const r = recorder()
    r.decoder(8).push(encodeFrame(new Uint8Array(8)))
    expect(r.frames.length).toBe(1)
    expect(r.errors).toEqual([])

    const s = recorder()
    const d = s.decoder(8)
    expect(d.push(encodeFrames([new Uint8Array([1]), new Uint8Array(9), new Uint8Array([2])]))).toBe(false)
    expect(s.frames.map((f) => [...f])).toEqual([[1]])
    expect(s.errors).toEqual([{ code: 'FRAME_TOO_LARGE', message: 'a frame of 9 bytes exceeds the limit of 8 bytes' }])
    expect(d.stopped).toBe(true)
  })

  it('refuses further input after FRAME_TOO_LARGE, whatever arrives', () => {
    const r = recorder()
    const d = r.decoder()
    const prefix = new Uint8Array([0xff, 0xff, 0xff, 0xff])
    // the bad prefix split across pushes is found all the same
    expect(d.push(prefix.subarray(0, 1))).toBe(true)
    expect(d.push(prefix.subarray(1))).toBe(false)
    expect(r.errors.length).toBe(1)
    expect(r.errors[0]!.message).toBe(`a frame of ${2 ** 32 - 1} bytes exceeds the limit of ${limits.protocol.frameBytesMax} bytes`)
    expect(d.push(encodeFrame(new Uint8Array([1])))).toBe(false)
    expect(r.frames).toEqual([])
    expect(r.errors.length).toBe(1)
    expect(d.bufferedBytes).toBe(0)
  })

  it('defaults to limits.protocol.frameBytesMax', () => {
    const ok = recorder()
    const okD = ok.decoder()
    const header = new Uint8Array(4)
    writeFrameHeader(header, 0, limits.protocol.frameBytesMax)
    expect(okD.push(header)).toBe(true)
    expect(okD.bufferedBytes).toBe(0)
    const bad = recorder()
    writeFrameHeader(header, 0, limits.protocol.frameBytesMax + 1)
    expect(bad.decoder().push(header)).toBe(false)
    expect(bad.errors[0]!.code).toBe('FRAME_TOO_LARGE')
  })

  it('refuses a bad frameBytesMax at construction', () => {
    const sink = { frame: () => {}, error: () => {} }
    expect(() => new FrameDecoder(sink, { frameBytesMax: -1 })).toThrow(AssertionError)
    expect(() => new FrameDecoder(sink, { frameBytesMax: 2 ** 32 })).toThrow(AssertionError)
    expect(() => new FrameDecoder(sink, { frameBytesMax: 1.5 })).toThrow(AssertionError)
  })
})

describe('frame - stopping', () => {
  it('stop() from the sink drops the rest of the chunk and all later input', () => {
    const got: number[][] = []
    const d: FrameDecoder = new FrameDecoder({
      frame: (b) => {
        got.push([...b])
        if (b[0] === 2) d.stop()
      },
      error: () => {},
    })
    const stream = encodeFrames([new Uint8Array([1]), new Uint8Array([2]), new Uint8Array([3])])
    expect(d.push(stream)).toBe(false)
    expect(d.push(stream)).toBe(false)
    expect(got).toEqual([[1], [2]])
  })

  it('a push from inside the sink is a bug', () => {
    const d: FrameDecoder = new FrameDecoder({ frame: () => void d.push(new Uint8Array(1)), error: () => {} })
    expect(() => d.push(encodeFrame(new Uint8Array(1)))).toThrow(AssertionError)
  })
})
