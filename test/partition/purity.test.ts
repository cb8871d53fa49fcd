/**
 * The tidy rules for src/partition, checked over the source text (test/tidy.test.ts does
 * the same for src/raft): imports only src/base and itself, and no clock, timer,
 * unseeded randomness or I/O, since every replica must compute the same answers.
 */
import { readFileSync, readdirSync } from 'node:fs'
import { join, relative } from 'node:path'
import { describe, expect, it } from 'vitest'

const root = join(import.meta.dirname, '..', '..')
const dir = join(root, 'src', 'partition')
const files = readdirSync(dir).filter((f) => f.endsWith('.ts'))

describe('partition - purity', () => {
  it('imports only src/base and its own modules, and no packages', () => {
    expect(files.length).toBeGreaterThan(0)
    for (const f of files) {
      const text = readFileSync(join(dir, f), 'utf8')
      for (const m of text.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]/gm)) {
        const spec = m[1]!
        expect(spec.startsWith('.'), `${f} imports package ${spec}`).toBe(true)
        const target = relative(join(root, 'src'), join(dir, spec)).split('/')[0]
        expect(['partition', 'base'], `${f} imports ${spec}`).toContain(target)
      }
    }
  })

  it('uses no clock, timer, unseeded randomness or I/O, and opens every module with a header', () => {
    const banned = /\b(Math\.random|Date\.now|new Date\b|performance\.now|setTimeout|setInterval|setImmediate|queueMicrotask|process\.|require\(|async |await )/
    for (const f of files) {
      const text = readFileSync(join(dir, f), 'utf8')
      expect(text.startsWith('/**'), `${f} has no header`).toBe(true)
      text.split('\n').forEach((line, i) => {
        const code = line.replace(/\/\/.*$/, '').replace(/^\s*\*.*$/, '')
        expect(banned.test(code), `${f}:${i + 1}: ${line.trim()}`).toBe(false)
      })
    }
  })
})
