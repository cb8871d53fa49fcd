/**
 * bench/cpuprofile.ts — where the time goes in a V8 .cpuprofile (from node --cpu-prof),
 * as text, without opening DevTools.
 *
 * For each profile: the share of samples that were idle, in the garbage collector or in
 * code; the time by module (a file of src/, workers/ or bench/, an npm package, node's
 * internals); the functions with the most self time; and the functions with the most
 * inclusive time (each function counted once per sample even when it recurses).
 *
 * Run:
 *   npx tsx bench/cpuprofile.ts /tmp/prof/*.cpuprofile
 *   npx tsx bench/cpuprofile.ts --top 30 --focus src/ /tmp/prof/CPU.*.cpuprofile
 */
import { readFileSync } from 'node:fs'
import { basename } from 'node:path'
import { parseArgs } from 'node:util'
import { REPO_DIR, fmtPct, style, textTable } from './lib/report.js'

const HELP = `Usage: npx tsx bench/cpuprofile.ts [--top N] [--focus TEXT] FILE.cpuprofile...

Summarises V8 CPU profiles: idle/GC/code shares, time by module, top functions by self
and by inclusive time. --focus keeps only functions whose location contains TEXT in
the function tables (default: all).
`

interface CallFrame {
  readonly functionName: string
  readonly url: string
  readonly lineNumber: number
}

interface ProfileNode {
  readonly id: number
  readonly callFrame: CallFrame
  readonly children?: readonly number[]
}

interface Profile {
  readonly nodes: readonly ProfileNode[]
  readonly samples: readonly number[]
  readonly timeDeltas: readonly number[]
  readonly startTime: number
  readonly endTime: number
}

const SPECIAL = new Set(['(idle)', '(program)', '(garbage collector)', '(root)'])

function where(cf: CallFrame): string {
  if (cf.url === '') return ''
  const path = cf.url.replace(/^file:\/\//, '')
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path)
  if (pkg) return pkg[1]!
  if (path.startsWith('node:')) return path
  if (path.startsWith(REPO_DIR)) return path.slice(REPO_DIR.length + 1)
  // the benches' compiled copy of src/ (bench/lib/broker-process.ts compiledBroker)
  const built = /\/raftmq-bench-build-[^/]+\/dist\/(.*)$/.exec(path)
  if (built) return built[1]!.replace(/\.js$/, '.ts')
  return path
}

function keyOf(cf: CallFrame): string {
  const w = where(cf)
  return `${cf.functionName || '(anonymous)'} ${w}${w && cf.lineNumber >= 0 ? `:${cf.lineNumber + 1}` : ''}`
}

function moduleOf(cf: CallFrame): string {
  if (SPECIAL.has(cf.functionName)) return cf.functionName
  const w = where(cf)
  if (w === '') return '(native / V8)'
  if (w.startsWith('node:')) return 'node: internals'
  return w
}

function summarise(file: string, top: number, focus: string | undefined): void {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile
  const byId = new Map<number, ProfileNode>()
  const parent = new Map<number, number>()
  for (const n of p.nodes) {
    byId.set(n.id, n)
    for (const c of n.children ?? []) parent.set(c, n.id)
  }
  const self = new Map<string, number>()
  const inclusive = new Map<string, number>()
  const modules = new Map<string, number>()
  let total = 0
  let idle = 0
  let gc = 0
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i] ?? 0
    const node = byId.get(p.samples[i]!)
    if (!node) continue
    total += dt
    const cf = node.callFrame
    if (cf.functionName === '(idle)') {
      idle += dt
      continue
    }
    if (cf.functionName === '(garbage collector)') gc += dt
    const k = keyOf(cf)
    self.set(k, (self.get(k) ?? 0) + dt)
    const m = moduleOf(cf)
    modules.set(m, (modules.get(m) ?? 0) + dt)
    const seen = new Set<string>()
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const f = byId.get(id)!.callFrame
      if (f.functionName === '(root)') break
      const fk = keyOf(f)
      if (seen.has(fk)) continue
      seen.add(fk)
      inclusive.set(fk, (inclusive.get(fk) ?? 0) + dt)
    }
  }
  const busy = total - idle
  const ms = (us: number): string => (us / 1000).toFixed(0)
  console.log(style.bold(basename(file)))
  console.log(
    `  ${ms(total)} ms profiled: idle ${fmtPct(idle / total)}, busy ${fmtPct(busy / total)} (${ms(busy)} ms), of which GC ${fmtPct(gc / Math.max(1, busy))}`,
  )
  if (busy <= 0) return
  const table = (title: string, m: Map<string, number>, filter: (k: string) => boolean): void => {
    const rows = [...m].filter(([k]) => filter(k)).sort((a, b) => b[1] - a[1]).slice(0, top)
    console.log()
    console.log(
      textTable(
        [
          { title, align: 'left' },
          { title: 'ms', align: 'right' },
          { title: 'of busy', align: 'right' },
        ],
        rows.map(([k, v]) => [k, ms(v), fmtPct(v / busy)]),
        2,
      ),
    )
  }
  table('module (self time)', modules, () => true)
  const keep = (k: string): boolean => focus === undefined || k.includes(focus)
  table('function (self time)', self, keep)
  table('function (inclusive time)', inclusive, keep)
  console.log()
}

const { values, positionals } = parseArgs({
  options: { top: { type: 'string', default: '20' }, focus: { type: 'string' }, help: { type: 'boolean', short: 'h', default: false } },
  allowPositionals: true,
  strict: true,
})
if (values.help || positionals.length === 0) {
  process.stdout.write(HELP)
  process.exit(values.help ? 0 : 2)
}
for (const f of positionals) summarise(f, Number(values.top), values.focus)
