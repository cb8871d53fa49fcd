/**
 * The protocol layer's import rules (DESIGN §8, STYLE): protocol knows base and nothing
 * above it, and never a socket, so the client and the broker share it and tests run it
 * without a network.
 */
import { readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { describe, expect, it } from 'vitest'
import { imports, root, sources } from '../support/source-tree.js'




/** The modules of the client protocol layer and what each may import besides src/base and itself. */
const mine = ['errors.ts', 'frame.ts', 'codec.ts', 'api.ts', 'apis']
const packagesAllowed = new Set(['msgpackr', 'node:buffer'])

describe('api - layering', () => {
  it('the frame, codec, error and api modules import only base, protocol, msgpackr and node:buffer', () => {
    const files = sources('src/protocol').filter((f) => mine.some((m) => relative('src/protocol', f).startsWith(m)))
    expect(files.length).toBeGreaterThanOrEqual(12)
    for (const f of files) {
      for (const spec of imports(f)) {
        if (!spec.startsWith('.')) {
          expect(packagesAllowed.has(spec), `${f} imports ${spec}`).toBe(true)
          continue
        }
        const target = relative(join(root, 'src'), join(root, f, '..', spec)).split('/')[0]!
        expect(['base', 'protocol'], `${f} imports ${spec}`).toContain(target)
      }
    }
  })

  it('nothing in src/protocol opens a socket or imports a layer above it', () => {
    const banned = /^(node:)?(net|tls|dgram|http|https|http2|child_process|cluster)$/
    for (const f of sources('src/protocol')) {
      for (const spec of imports(f)) {
        expect(banned.test(spec), `${f} imports ${spec}`).toBe(false)
        if (spec.startsWith('.')) {
          const target = relative(join(root, 'src'), join(root, f, '..', spec)).split('/')[0]!
          expect(['base', 'protocol'], `${f} imports ${spec}`).toContain(target)
        }
      }
    }
  })

  it('every module opens with a header comment', () => {
    for (const f of sources('src/protocol').filter((f) => mine.some((m) => relative('src/protocol', f).startsWith(m)))) {
      expect(readFileSync(join(root, f), 'utf8').startsWith('/**'), f).toBe(true)
    }
  })
})
