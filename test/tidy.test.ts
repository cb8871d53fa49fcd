/**
 * Tidy: the layering of DESIGN.md §8 and the determinism bans of the Raft core, checked
 * over the source text so that a violation fails the build rather than a review.
 */
import { readFileSync, readdirSync } from 'node:fs'
import { join, relative } from 'node:path'
import { describe, expect, it } from 'vitest'
import { imports, root, sources } from './support/source-tree.js'




/**
 * Which src/ layers each layer may import besides itself (DESIGN.md §8: arrows point
 * down the list), and whether it may use packages (npm or node:*). `types` holds ambient
 * declarations only.
 */
const layers: Record<string, { readonly may: readonly string[]; readonly packages: boolean }> = {
  base: { may: [], packages: false },
  raft: { may: ['base'], packages: false },
  protocol: { may: ['base'], packages: true },
  storage: { may: ['base', 'raft'], packages: true },
  partition: { may: ['base'], packages: false },
  controller: { may: ['base'], packages: true },
  group: { may: ['base', 'raft'], packages: false },
  replica: { may: ['base', 'raft', 'protocol', 'storage', 'partition', 'group'], packages: true },
  broker: { may: ['base', 'raft', 'protocol', 'storage', 'partition', 'controller', 'group', 'replica', 'types'], packages: true },
  client: { may: ['base', 'protocol'], packages: true },
  cli: { may: ['base', 'protocol', 'storage', 'broker', 'client'], packages: true },
}

describe('tidy - layering', () => {
  for (const [layer, rule] of Object.entries(layers)) {
    it(`src/${layer} imports only ${rule.may.length ? rule.may.join(', ') : 'nothing'}${rule.packages ? ' and packages' : ''}`, () => {
      let files: string[] = []
      try {
        files = sources(`src/${layer}`)
      } catch {
        return // a layer that does not exist yet
      }
      for (const f of files) {
        for (const spec of imports(f)) {
          if (!spec.startsWith('.')) {
            expect(rule.packages, `${f} imports package ${spec}`).toBe(true)
            continue
          }
          const target = relative(join(root, 'src'), join(root, f, '..', spec)).split('/')[0]!
          expect([layer, ...rule.may], `${f} imports ${spec}`).toContain(target)
        }
      }
    })
  }

  it('src/broker/peer imports only base and node built-ins (the Raft hosts depend on it, not it on them)', () => {
    for (const f of sources('src/broker/peer')) {
      for (const spec of imports(f)) {
        if (spec.startsWith('node:')) continue
        expect(spec.startsWith('.'), `${f} imports package ${spec}`).toBe(true)
        const target = relative(join(root, 'src'), join(root, f, '..', spec))
        expect(target.startsWith('base/') || target.startsWith('broker/peer/'), `${f} imports ${spec}`).toBe(true)
      }
    }
  })

  it('every directory under src/ is a known layer', () => {
    const dirs = readdirSync(join(root, 'src'), { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name)
    for (const d of dirs) expect([...Object.keys(layers), 'types'], `src/${d}`).toContain(d)
  })
})

describe('tidy - determinism of the Raft core', () => {
  it('src/raft and src/partition use no clock, timer, unseeded randomness or I/O', () => {
    const banned = /\b(Math\.random|Date\.now|new Date\b|performance\.now|setTimeout|setInterval|setImmediate|queueMicrotask|process\.|require\(|async |await )/
    for (const f of [...sources('src/raft'), ...sources('src/partition')]) {
      const lines = readFileSync(join(root, f), 'utf8').split('\n')
      lines.forEach((line, i) => {
        const code = line.replace(/\/\/.*$/, '').replace(/^\s*\*.*$/, '')
        expect(banned.test(code), `${f}:${i + 1}: ${line.trim()}`).toBe(false)
      })
    }
  })

  it('every module opens with a header comment', () => {
    for (const f of [...sources('src'), ...sources('test/sim'), ...sources('workers')]) {
      const text = readFileSync(join(root, f), 'utf8').replace(/^#!.*\n/, '')
      if (f.endsWith('.test.ts') || f.endsWith('.d.ts')) continue
      expect(text.startsWith('/**'), `${f} has no header`).toBe(true)
    }
  })
})
