/**
 * Command-line option checks shared by the benchmarks: one place for what every bench's
 * parseArgs result goes through.
 */

/** The number `s` given for `--name`, at least `min` (an integer unless `integer` is false); throws a usage error otherwise. */
export function optionNumber(name: string, s: string, min: number, integer = true): number {
  const n = Number(s)
  if (!Number.isFinite(n) || n < min || (integer && !Number.isInteger(n))) throw new Error(`--${name}: expected ${integer ? 'an integer' : 'a number'} >= ${min}, got "${s}"`)
  return n
}
