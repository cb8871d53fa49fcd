/**
 * The mutation report (`npm run mutate:report`, after `npm run mutate`): reads Stryker's
 * JSON report (mutation-testing-report-schema) and writes test/sim/MUTATION-REPORT.md with
 * the score, a per-file table and every Survived or NoCoverage mutant, each with its class
 * from test/sim/mutation-classes.json (hand-maintained: safety, liveness or equivalent).
 *
 * A class is keyed by what the mutant is, not where: file, mutator, the mutated line's
 * text (whitespace collapsed), the original snippet and its replacement, so that an edit
 * elsewhere in the file keeps every key. Two mutants with the same key (the same line
 * text twice in a file) get `#2`, `#3` in file order.
 *
 * Flags: --report PATH (default reports/mutation/mutation.json), --classes PATH, --out
 * PATH, --strict (exit 1 if a survivor is unclassified), --keys (print the unclassified
 * keys), --dump PATH (every survivor as JSON, with its key, for a classification pass).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import Table from 'cli-table3'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')

/** The part of the schema this script reads. */
interface Position {
  readonly line: number
  readonly column: number
}
interface ReportMutant {
  readonly id: string
  readonly mutatorName: string
  readonly replacement?: string
  readonly location: { readonly start: Position; readonly end: Position }
  readonly status: string
  readonly statusReason?: string
}
interface ReportFile {
  readonly source: string
  readonly mutants: readonly ReportMutant[]
}
interface MutationReport {
  readonly files: Readonly<Record<string, ReportFile>>
}

type MutantClass = 'safety' | 'liveness' | 'equivalent'
interface Classification {
  readonly class: MutantClass
  readonly why: string
}

const STATUSES = ['Killed', 'Timeout', 'Survived', 'NoCoverage', 'CompileError', 'RuntimeError'] as const
const CLASSES: readonly MutantClass[] = ['safety', 'liveness', 'equivalent']

interface Row {
  readonly file: string
  readonly line: number
  readonly mutant: ReportMutant
  readonly original: string
  readonly key: string
  /** The whole file the run mutated, as it was then. */
  readonly source: string
}

/** A Survived or NoCoverage mutant, with its class if it has one (for mutant-sweep.ts). */
export interface Survivor extends Row {
  readonly class: Classification | undefined
}

/** What mutant-sweep.ts found for a survivor: a unit test or a seed of the long sweep that kills it, or nothing. */
export interface SweepOutcome {
  readonly key: string
  readonly where: string
  readonly mutator: string
  readonly replacement: string
  readonly seedsPerProfile: number
  /** The Raft unit tests' first failure, or the sweep's first violation (seed 0: the run crashed or hung); null: all passed. */
  readonly killedBy: { readonly by: 'unit test' | 'sweep'; readonly nodes: number; readonly profile: string; readonly seed: number; readonly violation: string } | null
  readonly seconds: number
}

export const SWEEPS_PATH = join(ROOT, 'test/sim/mutant-sweeps.json')

export function loadSweeps(path = SWEEPS_PATH): Record<string, SweepOutcome> {
  return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as Record<string, SweepOutcome>) : {}
}

function verdict(o: SweepOutcome | undefined): string {
  if (!o) return 'not tried'
  const k = o.killedBy
  if (!k) return `survived ${o.seedsPerProfile} seeds × 4 profiles`
  if (k.by === 'unit test') return `killed by a unit test (${k.violation.replace(/^test\/raft\//, '')})`
  return k.seed > 0 ? `killed by the sweep: \`--seed ${k.seed} --nodes ${k.nodes}${k.profile === 'churn' ? ' --profile churn' : ''}\`` : `killed by the sweep (${k.violation})`
}

const DEFAULT_REPORT = 'reports/mutation/mutation.json'
const DEFAULT_CLASSES = 'test/sim/mutation-classes.json'

function loadClasses(classesPath: string): Record<string, Classification> {
  const classes: Record<string, Classification> = existsSync(classesPath) ? (JSON.parse(readFileSync(classesPath, 'utf8')) as Record<string, Classification>) : {}
  for (const [k, c] of Object.entries(classes)) {
    if (!CLASSES.includes(c.class)) throw new Error(`${relative(ROOT, classesPath)}: "${k}" has class ${String(c.class)}`)
  }
  return classes
}

export function loadSurvivors(reportPath = DEFAULT_REPORT, classesPath = DEFAULT_CLASSES): Survivor[] {
  const report = JSON.parse(readFileSync(resolve(ROOT, reportPath), 'utf8')) as MutationReport
  const classes = loadClasses(resolve(ROOT, classesPath))
  return rowsOf(report)
    .filter((r) => r.mutant.status === 'Survived' || r.mutant.status === 'NoCoverage')
    .map((r) => ({ ...r, class: classes[r.key] }))
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name)
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback
}

const collapse = (s: string): string => s.replace(/\s+/g, ' ').trim()

function truncate(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`
}

/** Where a schema position (1-based line and column) falls in the file's text. */
function offsetOf(lines: readonly string[], p: Position): number {
  let o = 0
  for (let l = 0; l < p.line - 1; l++) o += lines[l]!.length + 1
  return o + p.column - 1
}

/** The source text a location covers (end exclusive). */
function sliceSource(source: string, lines: readonly string[], start: Position, end: Position): string {
  return source.slice(offsetOf(lines, start), offsetOf(lines, end))
}

/** The file's text with the mutant in place of what its location covers. */
export function applyMutant(r: Row): string {
  const lines = r.source.split('\n')
  const { start, end } = r.mutant.location
  return r.source.slice(0, offsetOf(lines, start)) + (r.mutant.replacement ?? '') + r.source.slice(offsetOf(lines, end))
}

/**
 * The stable key. The snippet is cut to 80 characters: a block or a long condition keeps
 * its key when its tail is edited, and the line text and replacement still tell it apart.
 */
function baseKey(file: string, m: ReportMutant, lineText: string, original: string): string {
  return [file, m.mutatorName, collapse(lineText), `${truncate(collapse(original), 80)} => ${truncate(collapse(m.replacement ?? ''), 80)}`].join(' | ')
}

function rowsOf(report: MutationReport): Row[] {
  const rows: Row[] = []
  for (const [name, f] of Object.entries(report.files).sort(([a], [b]) => a.localeCompare(b))) {
    const file = relative(ROOT, resolve(ROOT, name))
    const lines = f.source.split('\n')
    const seen = new Map<string, number>()
    const mutants = [...f.mutants].sort((a, b) => a.location.start.line - b.location.start.line || a.location.start.column - b.location.start.column || a.id.localeCompare(b.id))
    for (const m of mutants) {
      const original = sliceSource(f.source, lines, m.location.start, m.location.end)
      const base = baseKey(file, m, lines[m.location.start.line - 1] ?? '', original)
      const n = (seen.get(base) ?? 0) + 1
      seen.set(base, n)
      rows.push({ file, line: m.location.start.line, mutant: m, original, key: n === 1 ? base : `${base} #${n}`, source: f.source })
    }
  }
  return rows
}

/** For a Markdown table cell: one line, no pipes breaking the table. */
function cell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\n/g, ' ')
}

function code(s: string): string {
  const t = cell(s)
  return t.includes('`') ? `\`\` ${t} \`\`` : `\`${t}\``
}

/** The cells a mutant's table row starts with: where, status, mutator, original → replacement. */
function mutantCells(r: Row): string {
  return `${r.file}:${r.line} | ${r.mutant.status} | ${r.mutant.mutatorName} | ${code(truncate(collapse(r.original), 70))} → ${code(truncate(collapse(r.mutant.replacement ?? ''), 70))}`
}

/** A section listing keys in a code block (none when there are none). */
function keyBlock(md: string[], heading: string, intro: string, keys: readonly string[]): void {
  if (keys.length === 0) return
  md.push(heading, '', intro, '', '```', ...keys, '```', '')
}

function pct(n: number, d: number): string {
  return d === 0 ? 'n/a' : `${((100 * n) / d).toFixed(2)}%`
}

function main(): number {
  const reportPath = resolve(ROOT, arg('--report', DEFAULT_REPORT))
  const classesPath = resolve(ROOT, arg('--classes', DEFAULT_CLASSES))
  const outPath = resolve(ROOT, arg('--out', 'test/sim/MUTATION-REPORT.md'))
  const strict = process.argv.includes('--strict')
  if (!existsSync(reportPath)) {
    console.error(`no Stryker report at ${relative(ROOT, reportPath)}: run \`npm run mutate\` first`)
    return 2
  }
  const report = JSON.parse(readFileSync(reportPath, 'utf8')) as MutationReport
  const classes = loadClasses(classesPath)

  const rows = rowsOf(report)
  const count = (rs: readonly Row[], status: string): number => rs.filter((r) => r.mutant.status === status).length
  const score = (rs: readonly Row[]): { detected: number; valid: number; covered: number } => {
    const detected = count(rs, 'Killed') + count(rs, 'Timeout')
    const survived = count(rs, 'Survived')
    return { detected, valid: detected + survived + count(rs, 'NoCoverage'), covered: detected + survived }
  }
  const all = score(rows)
  const undetected = rows.filter((r) => r.mutant.status === 'Survived' || r.mutant.status === 'NoCoverage')
  const unclassified = undetected.filter((r) => !classes[r.key])
  const used = new Set(undetected.map((r) => r.key))
  const stale = Object.keys(classes).filter((k) => !used.has(k))
  const byClass = (c: MutantClass): Row[] => undetected.filter((r) => classes[r.key]?.class === c)

  const md: string[] = []
  md.push('# Mutation report: src/raft')
  md.push('')
  md.push('Generated by `npm run mutate:report` (test/sim/mutation-report.ts) from the StrykerJS run of `npm run mutate`')
  md.push('(stryker.config.mjs: Raft unit tests + the simulator mutation slice). Classes come from test/sim/mutation-classes.json.')
  md.push('')
  md.push(`**Mutation score: ${pct(all.detected, all.valid)}** (Killed + Timeout = ${all.detected} of ${all.valid} valid mutants; ${pct(all.detected, all.covered)} of the ${all.covered} covered ones). Total mutants: ${rows.length}.`)
  md.push('')
  md.push('| Status | Count |')
  md.push('| --- | ---: |')
  for (const s of STATUSES) md.push(`| ${s} | ${count(rows, s)} |`)
  const other = rows.filter((r) => !(STATUSES as readonly string[]).includes(r.mutant.status))
  if (other.length > 0) md.push(`| other (${[...new Set(other.map((r) => r.mutant.status))].join(', ')}) | ${other.length} |`)
  md.push('')
  md.push(`Survivors and uncovered mutants by class: ${CLASSES.map((c) => `${c} ${byClass(c).length}`).join(', ')}, UNCLASSIFIED ${unclassified.length}.`)
  md.push('')
  md.push('## Per file')
  md.push('')
  md.push(`| File | Mutants | ${STATUSES.join(' | ')} | Score |`)
  md.push(`| --- | ---: | ${STATUSES.map(() => '---:').join(' | ')} | ---: |`)
  const files = [...new Set(rows.map((r) => r.file))]
  const perFile = files.map((f) => {
    const rs = rows.filter((r) => r.file === f)
    const s = score(rs)
    return { f, n: rs.length, counts: STATUSES.map((st) => count(rs, st)), score: pct(s.detected, s.valid) }
  })
  for (const p of perFile) md.push(`| ${p.f} | ${p.n} | ${p.counts.join(' | ')} | ${p.score} |`)
  md.push('')
  const safety = byClass('safety')
  if (safety.length > 0) {
    md.push(`## Safety survivors (${safety.length})`)
    md.push('')
    md.push('Each is tried with `npm run mutate:sweep` (test/sim/mutant-sweep.ts): the Raft unit tests, then the long simulator sweep, with the mutant applied (results in test/sim/mutant-sweeps.json).')
    md.push('')
    md.push('| Where | Status | Mutator | Original → replacement | Why | Unit tests and long sweep |')
    md.push('| --- | --- | --- | --- | --- | --- |')
    const sweeps = loadSweeps()
    for (const r of safety) md.push(`| ${mutantCells(r)} | ${cell(classes[r.key]!.why)} | ${cell(verdict(sweeps[r.key]))} |`)
    md.push('')
  }
  md.push('## Survived and NoCoverage mutants')
  md.push('')
  md.push('Class: `safety` could break election safety, log matching, leader completeness, state machine safety or the durability of acknowledged entries (or trip an invariant only in a bad history); `liveness` only slows, stalls or costs more messages or bytes; `equivalent` changes no behaviour.')
  md.push('')
  md.push('| Where | Status | Mutator | Original → replacement | Class | Why |')
  md.push('| --- | --- | --- | --- | --- | --- |')
  for (const r of undetected) {
    const c = classes[r.key]
    md.push(`| ${mutantCells(r)} | ${c ? c.class : '**UNCLASSIFIED**'} | ${cell(c?.why ?? '')} |`)
  }
  md.push('')
  keyBlock(md, '## Keys of the unclassified mutants', 'Copy a key into test/sim/mutation-classes.json with `{ "class": ..., "why": ... }`.', unclassified.map((r) => r.key))
  keyBlock(md, `## Stale classifications (${stale.length})`, 'Keys in mutation-classes.json that no current survivor has (killed now, or its line changed):', stale)
  writeFileSync(outPath, md.join('\n'))

  const table = new Table({ head: ['File', 'Mutants', ...STATUSES, 'Score'] })
  for (const p of perFile) table.push([p.f, p.n, ...p.counts, p.score])
  table.push(['all', rows.length, ...STATUSES.map((s) => count(rows, s)), pct(all.detected, all.valid)])
  console.log(table.toString())
  console.log(`wrote ${relative(ROOT, outPath)}: score ${pct(all.detected, all.valid)}; ${undetected.length} survived or uncovered (${CLASSES.map((c) => `${c} ${byClass(c).length}`).join(', ')}); ${unclassified.length} UNCLASSIFIED; ${stale.length} stale classification(s)`)
  if (process.argv.includes('--keys')) for (const r of unclassified) console.log(r.key)
  const dump = arg('--dump', '')
  if (dump) {
    const out = undetected.map((r) => ({ key: r.key, where: `${r.file}:${r.line}`, status: r.mutant.status, mutator: r.mutant.mutatorName, original: r.original, replacement: r.mutant.replacement ?? '', class: classes[r.key]?.class ?? null }))
    writeFileSync(resolve(ROOT, dump), `${JSON.stringify(out, null, 2)}\n`)
  }
  return strict && unclassified.length > 0 ? 1 : 0
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) process.exitCode = main()
