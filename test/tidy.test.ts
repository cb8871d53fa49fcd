/**
 * Tidy: the layering of DESIGN.md §8 and the determinism bans of the Raft core, checked
 * over the source text so that a violation fails the build rather than a review.
 */
import { readFileSync, readdirSync } from 'node:fs'
import { join, relative } from 'node:path'
import { describe, expect, it } from 'vitest'

const root = join(import.meta.dirname, '..')

function sources(dir: string): string[] {
  const out: string[] = []
  for (const e of readdirSync(join(root, dir), { withFileTypes: true })) {
    const p = join(dir, e.name)
    if (e.isDirectory()) out.push(...sources(p))
    else if (e.name.endsWith('.ts')) out.push(p)
  }
  return out
}

function imports(file: string): string[] {
  const text = readFileSync(join(root, file), 'utf8')
  return [...text.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]/gm)].map((m) => m[1]!)
}

/** Which src/ layers each layer may import (besides itself). */
const allowed: Record<string, readonly string[]> = {
  base: [],
  raft: ['base'],
  group: ['base', 'raft'],
}

describe('tidy - layering', () => {
  for (const [layer, may] of Object.entries(allowed)) {
    it(`src/${layer} imports only ${may.length ? may.join(', ') : 'nothing outside itself'}`, () => {
      const files = sources(`src/${layer}`)
      expect(files.length).toBeGreaterThan(0)
      for (const f of files) {
        for (const spec of imports(f)) {
          expect(spec.startsWith('.'), `${f} imports package ${spec}`).toBe(true)
          const target = relative(join(root, 'src'), join(root, f, '..', spec)).split('/')[0]!
          expect([layer, ...may], `${f} imports ${spec}`).toContain(target)
        }
      }
    })
  }
})

describe('tidy - determinism of the Raft core', () => {
  it('src/raft uses no clock, timer, unseeded randomness or I/O', () => {
    const banned = /\b(Math\.random|Date\.now|new Date\b|performance\.now|setTimeout|setInterval|setImmediate|queueMicrotask|process\.|require\(|async |await )/
    for (const f of sources('src/raft')) {
      const lines = readFileSync(join(root, f), 'utf8').split('\n')
      lines.forEach((line, i) => {
        const code = line.replace(/\/\/.*$/, '').replace(/^\s*\*.*$/, '')
        expect(banned.test(code), `${f}:${i + 1}: ${line.trim()}`).toBe(false)
      })
    }
  })

  it('every module opens with a header comment', () => {
    for (const f of [...sources('src'), ...sources('test/sim')]) {
      const text = readFileSync(join(root, f), 'utf8')
      if (f.endsWith('.test.ts')) continue
      expect(text.startsWith('/**'), `${f} has no header`).toBe(true)
    }
  })
})
