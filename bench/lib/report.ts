/**
 * bench/lib/report.ts — what the broker benchmarks share for reporting: medians and
 * percentiles, number formatting, aligned text tables and markdown tables, terminal
 * colour (only on a TTY, never with NO_COLOR), the machine description, and the
 * results folder.
 *
 * Imports node modules only.
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, totalmem } from 'node:os'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

// ---- statistics ---------------------------------------------------------------------------

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

/** The p-th percentile (0..100) of `sorted` (ascending), nearest rank. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[rank]!
}

/** Median, min, max and spread ((max - min) / median) of repeated measurements. */
export interface Spread {
  readonly median: number
  readonly min: number
  readonly max: number
  readonly spread: number
}

export function spreadOf(xs: readonly number[]): Spread {
  const med = median(xs)
  const min = Math.min(...xs)
  const max = Math.max(...xs)
  return { median: med, min, max, spread: med > 0 ? (max - min) / med : 0 }
}

// ---- formatting ---------------------------------------------------------------------------

export function fmtInt(x: number): string {
  return Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '-'
}

/** Milliseconds with precision that suits their size: 0.214, 3.41, 41.2, 1,402. */
export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return '-'
  if (ms < 1) return ms.toFixed(3)
  if (ms < 10) return ms.toFixed(2)
  if (ms < 100) return ms.toFixed(1)
  return fmtInt(ms)
}

export function fmtPct(x: number): string {
  return `${(x * 100).toFixed(0)}%`
}

export function fmtMB(bytes: number): string {
  return (bytes / 1e6).toFixed(1)
}

export function fmtX(x: number): string {
  return x >= 100 ? `${x.toFixed(0)}x` : x >= 10 ? `${x.toFixed(1)}x` : `${x.toFixed(2)}x`
}

export function fmtBytes(n: number): string {
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(n % (1 << 20) === 0 ? 0 : 2)} MiB`
  if (n >= 1024) return `${(n / 1024).toFixed(n % 1024 === 0 ? 0 : 1)} KiB`
  return `${n} B`
}

// ---- colour -------------------------------------------------------------------------------

const useColor = process.stdout.isTTY === true && !('NO_COLOR' in process.env)
const sgr = (code: string) => (s: string): string => (useColor ? `\x1b[${code}m${s}\x1b[0m` : s)

export const style = {
  bold: sgr('1'),
  dim: sgr('2'),
  green: sgr('32'),
  red: sgr('31'),
  yellow: sgr('33'),
  cyan: sgr('36'),
}

/** Visible length of a string that may hold colour codes. */
function visibleLength(s: string): number {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\x1b\[[0-9;]*m/g, '').length
}

// ---- tables -------------------------------------------------------------------------------

export interface Column {
  readonly title: string
  /** Numbers align right, words left. */
  readonly align: 'left' | 'right'
}

/** An aligned plain-text table: header, a rule, rows; `indent` spaces before each line. */
export function textTable(columns: readonly Column[], rows: readonly (readonly string[])[], indent = 0): string {
  const widths = columns.map((c, i) => Math.max(visibleLength(c.title), ...rows.map((r) => visibleLength(r[i] ?? ''))))
  const pad = (s: string, i: number): string => {
    const fill = ' '.repeat(Math.max(0, widths[i]! - visibleLength(s)))
    return columns[i]!.align === 'right' ? fill + s : s + fill
  }
  const lead = ' '.repeat(indent)
  const line = (cells: readonly string[]): string => lead + cells.map((c, i) => pad(c, i)).join('  ').trimEnd()
  const head = line(columns.map((c) => style.bold(c.title)))
  const rule = lead + style.dim(widths.map((w) => '─'.repeat(w)).join('  '))
  return [head, rule, ...rows.map(line)].join('\n')
}

export function markdownTable(columns: readonly Column[], rows: readonly (readonly string[])[]): string {
  const esc = (s: string): string => s.replace(/\|/g, '\\|')
  const head = `| ${columns.map((c) => esc(c.title)).join(' | ')} |`
  const align = `| ${columns.map((c) => (c.align === 'right' ? '--:' : ':--')).join(' | ')} |`
  return [head, align, ...rows.map((r) => `| ${r.map(esc).join(' | ')} |`)].join('\n')
}

// ---- environment and results --------------------------------------------------------------

export interface Environment {
  readonly node: string
  readonly platform: string
  readonly cpu: string
  readonly cpus: number
  readonly memoryGB: number
  readonly loadavg1m: number
}

export function environment(): Environment {
  return {
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    cpu: cpus()[0]?.model ?? 'unknown',
    cpus: cpus().length,
    memoryGB: Math.round(totalmem() / 2 ** 30),
    loadavg1m: Number(loadavg()[0]!.toFixed(2)),
  }
}

export function describeEnvironment(env: Environment): string {
  return `${env.node}, ${env.cpu} (${env.cpus} cpus, ${env.memoryGB} GB), ${env.platform}; 1-min load average at start ${env.loadavg1m}`
}

let clockTicks: number | null = null
/** The kernel's clock ticks per second (the unit of /proc CPU times). */
export function clockTicksPerSecond(): number {
  if (clockTicks === null) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
    } catch {
      clockTicks = 100
    }
  }
  return clockTicks
}

/**
 * CPU seconds the whole machine has been busy (all CPUs, every process: user, nice,
 * system, irq, softirq, steal from /proc/stat). Subtracting what the bench and the
 * broker used over an interval shows how much other work competed with them.
 */
export function machineBusySeconds(): number {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!
    const f = line.trim().split(/\s+/).slice(1).map(Number)
    const busy = f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + f[7]!
    return busy / clockTicksPerSecond()
  } catch {
    return NaN
  }
}

/** CPU seconds this process used so far (all threads). */
export function ownCpuSeconds(): number {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1e6
}

/** The commit the tree is at and the files that differ from it (the benches measure the working tree). */
export function gitState(): { commit: string; dirty: string[] } {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO_DIR, encoding: 'utf8' }).trim()
    const status = execFileSync('git', ['status', '--porcelain', '--', 'src', 'workers'], { cwd: REPO_DIR, encoding: 'utf8' })
    return { commit, dirty: status.split('\n').filter((l) => l.trim() !== '').map((l) => l.slice(3)) }
  } catch {
    return { commit: 'unknown', dirty: [] }
  }
}

export const BENCH_DIR = dirname(dirname(fileURLToPath(import.meta.url)))
export const REPO_DIR = dirname(BENCH_DIR)

/** Writes bench/results/<name>.json and .md; returns their paths relative to the working directory. */
export function saveResults(name: string, json: unknown, markdown: string): string[] {
  const dir = join(BENCH_DIR, 'results')
  mkdirSync(dir, { recursive: true })
  const files = [join(dir, `${name}.json`), join(dir, `${name}.md`)]
  writeFileSync(files[0]!, `${JSON.stringify(json, null, 2)}\n`)
  writeFileSync(files[1]!, markdown.endsWith('\n') ? markdown : `${markdown}\n`)
  return files.map((f) => relative(process.cwd(), f))
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/**
 * Waits (up to `timeoutMs`) until the rest of the machine uses at most `otherCoresMax`
 * cores, sampled over 0.5 s windows with nothing of ours running; returns the last
 * sample. A shared machine's other work makes figures low and noisy: better to wait a
 * little than to measure it. `onWait` is called once, when waiting starts.
 */
export async function waitForQuiet(otherCoresMax: number, timeoutMs: number, onWait?: (cores: number) => void): Promise<number> {
  const until = Date.now() + timeoutMs
  let warned = false
  for (;;) {
    const b0 = machineBusySeconds()
    const c0 = ownCpuSeconds()
    const t0 = performance.now()
    await sleep(500)
    const seconds = (performance.now() - t0) / 1000
    const other = Math.max(0, (machineBusySeconds() - b0 - (ownCpuSeconds() - c0)) / seconds)
    if (!(other > otherCoresMax) || Date.now() >= until) return other
    if (!warned) onWait?.(other)
    warned = true
  }
}
