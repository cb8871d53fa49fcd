/**
 * Schemas: the small vocabulary the protocol's validators are written in. A Schema<T>
 * checks that an `unknown` (a decoded msgpack value) is a T and says where and why not;
 * the validated value itself is then used as the T (no copy, no rebuild).
 *
 * Rules shared by every message, so that each API module states only its fields:
 * - maps are plain objects; a field absent or `undefined` is missing; a field the
 *   schema does not name is an error (a protocol version's shape is closed: new fields
 *   come with a new version, so a misspelt `atomic` cannot be silently ignored);
 * - integers are safe integers within explicit bounds; strings and arrays have a
 *   maximum length; bytes are Uint8Array (Buffer included);
 * - an issue names the field by path (`partitions[2].topic`) and is built only on
 *   failure: a valid message costs no allocation here.
 *
 * `object<T>(fields)` ties a schema to an interface: the compiler demands a schema for
 * every field of T, of exactly that field's type (the phantom type is invariant), and
 * `optional(...)` for exactly the optional ones.
 *
 * Imports nothing outside src/protocol/apis.
 */

/** Codes a schema may report: shape errors, and topic names that break the naming rule. */
export type IssueCode = 'INVALID_REQUEST' | 'INVALID_TOPIC'

export interface Issue {
  /** From the checked value down to the bad field; filled in as the issue travels up. */
  readonly path: (string | number)[]
  readonly reason: string
  readonly code: IssueCode
}

export interface Schema<T> {
  /** Undefined when `value` is a T, else what is wrong. Never throws. */
  readonly check: (value: unknown) => Issue | undefined
  /** Whether a containing object may omit the field. */
  readonly optional: boolean
  /** Phantom, never set: makes Schema<T> invariant in T. */
  readonly _type?: (value: T) => T
}

/** The static type a schema checks. */
export type Infer<S> = S extends Schema<infer T> ? T : never

export function issue(reason: string, code: IssueCode = 'INVALID_REQUEST'): Issue {
  return { path: [], reason, code }
}

function schema<T>(check: (value: unknown) => Issue | undefined, optional = false): Schema<T> {
  return { check, optional }
}

/** A short name of a value's kind, for messages ("must be a string, not a number"). */
export function describe(value: unknown): string {
  if (value === null) return 'null'
  if (value === undefined) return 'undefined'
  if (Array.isArray(value)) return 'an array'
  if (value instanceof Uint8Array) return 'bytes'
  switch (typeof value) {
    case 'string':
      return 'a string'
    case 'number':
      return Number.isNaN(value) ? 'NaN' : 'a number'
    case 'boolean':
      return 'a boolean'
    case 'bigint':
      return 'a bigint'
    case 'object':
      return isPlainObject(value) ? 'a map' : `a ${Object.prototype.toString.call(value).slice(8, -1)}`
    default:
      return `a ${typeof value}`
  }
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false
  const proto = Object.getPrototypeOf(value) as unknown
  return proto === Object.prototype || proto === null
}

/** A path as people write it: `partitions[2].topic`; `root` prefixes it. */
export function formatPath(root: string, path: readonly (string | number)[]): string {
  let out = root
  for (const step of path) {
    if (typeof step === 'number') out += `[${step}]`
    else if (/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(step)) out += out === '' ? step : `.${step}`
    else out += `[${JSON.stringify(step.length > 64 ? `${step.slice(0, 64)}…` : step)}]`
  }
  return out
}

/** An integer in [min, max]; bounds are within the safe-integer range. */
export function int(min: number, max: number): Schema<number> {
  return schema((v) => {
    if (typeof v !== 'number') return issue(`must be an integer, not ${describe(v)}`)
    if (!Number.isInteger(v)) return issue(`must be an integer, not ${v}`)
    if (v < min) return issue(min === 0 ? `must not be negative (is ${v})` : `must be at least ${min} (is ${v})`)
    if (v > max) return issue(`must be at most ${max} (is ${v})`)
    return undefined
  })
}

/** A string of min..max UTF-16 code units. */
export function str(min: number, max: number): Schema<string> {
  return schema((v) => {
    if (typeof v !== 'string') return issue(`must be a string, not ${describe(v)}`)
    if (v.length < min) return issue(min === 1 ? 'must not be empty' : `must be at least ${min} characters long`)
    if (v.length > max) return issue(`must be at most ${max} characters long (is ${v.length})`)
    return undefined
  })
}

export const bool: Schema<boolean> = schema((v) =>
  typeof v === 'boolean' ? undefined : issue(`must be a boolean, not ${describe(v)}`),
)

/** One of a fixed set of strings or booleans. */
export function literal<const L extends readonly (string | boolean)[]>(...values: L): Schema<L[number]> {
  const shown = values.map((x) => JSON.stringify(x)).join(' or ')
  return schema((v) => ((values as readonly unknown[]).includes(v) ? undefined : issue(`must be ${shown}`)))
}

/** A member of a set given by a type guard (error codes). */
export function member<T>(is: (value: unknown) => value is T, what: string): Schema<T> {
  return schema((v) => (is(v) ? undefined : issue(`must be ${what}`)))
}

/** Bytes (Uint8Array or Buffer) of at most `max` bytes. */
export function bytes(max: number): Schema<Uint8Array> {
  return schema((v) => {
    if (!(v instanceof Uint8Array)) return issue(`must be bytes, not ${describe(v)}`)
    if (v.length > max) return issue(`must be at most ${max} bytes long (is ${v.length})`)
    return undefined
  })
}

/** A map whose values are not looked into (error details). */
export const anyMap: Schema<Readonly<Record<string, unknown>>> = schema((v) =>
  isPlainObject(v) ? undefined : issue(`must be a map, not ${describe(v)}`),
)

export function array<T>(item: Schema<T>, max: number, min = 0): Schema<readonly T[]> {
  return schema((v) => {
    if (!Array.isArray(v)) return issue(`must be an array, not ${describe(v)}`)
    if (v.length < min) return issue(min === 1 ? 'must not be empty' : `must have at least ${min} items`)
    if (v.length > max) return issue(`must have at most ${max} items (has ${v.length})`)
    for (let i = 0; i < v.length; i++) {
      const bad = item.check(v[i])
      if (bad !== undefined) {
        bad.path.unshift(i)
        return bad
      }
    }
    return undefined
  })
}

export function optional<T>(inner: Schema<T>): Schema<T | undefined> {
  return schema((v) => (v === undefined ? undefined : inner.check(v)), true)
}

export function nullable<T>(inner: Schema<T>): Schema<T | null> {
  return schema((v) => (v === null ? undefined : inner.check(v)), inner.optional)
}

/** Either shape; on failure, the issue that got deeper into the value (the likelier intent). */
export function union<A, B>(a: Schema<A>, b: Schema<B>): Schema<A | B> {
  return schema((v) => {
    const badA = a.check(v)
    if (badA === undefined) return undefined
    const badB = b.check(v)
    if (badB === undefined) return undefined
    return badB.path.length > badA.path.length ? badB : badA
  })
}

/** One schema per field of T: required fields plain, optional ones wrapped in optional(). */
export type Fields<T> = { readonly [K in keyof Required<T>]: Schema<T[K]> }

/**
 * A plain object with exactly the given fields. `refine` runs once every field is valid,
 * for rules across fields (versionMin <= versionMax, no duplicate partitions).
 */
export function object<T extends object>(fields: Fields<T>, refine?: (value: T) => Issue | undefined): Schema<T> {
  const entries = Object.entries(fields) as [string, Schema<unknown>][]
  const names = new Set(entries.map(([name]) => name))
  return schema((v) => {
    if (!isPlainObject(v)) return issue(`must be a map, not ${describe(v)}`)
    let present = 0
    for (const [name, field] of entries) {
      const value = v[name]
      if (value === undefined) {
        if (Object.hasOwn(v, name)) present++
        if (field.optional) continue
        return at(name, issue('is required'))
      }
      present++
      const bad = field.check(value)
      if (bad !== undefined) return at(name, bad)
    }
    let keys = 0
    for (const _ in v) keys++
    if (keys !== present) {
      const unknown = Object.keys(v).find((key) => !names.has(key))
      return at(unknown ?? '?', issue('is not a field of this message'))
    }
    return refine?.(v as T)
  })
}

function at(name: string | number, bad: Issue): Issue {
  bad.path.unshift(name)
  return bad
}

// ---- the field types several APIs share ----

/** Kafka's rule (Topic.java): 1..249 of [a-zA-Z0-9._-], and not "." or "..". */
const TOPIC_NAME = /^[a-zA-Z0-9._-]+$/
export const TOPIC_NAME_CHARS_MAX = 249

/** Why `name` is not a legal topic name, or undefined if it is. */
export function topicNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'must not be empty'
  if (name.length > TOPIC_NAME_CHARS_MAX) return `must be at most ${TOPIC_NAME_CHARS_MAX} characters long (is ${name.length})`
  if (name === '.' || name === '..') return `must not be "${name}"`
  if (!TOPIC_NAME.test(name)) return `${JSON.stringify(name.slice(0, 64))} may contain only ASCII letters, digits, '.', '_' and '-'`
  return undefined
}

/** A topic name: a non-string is a malformed request, a string breaking the rule INVALID_TOPIC. */
export const topicName: Schema<string> = schema((v) => {
  if (typeof v !== 'string') return issue(`must be a string, not ${describe(v)}`)
  const problem = topicNameProblem(v)
  return problem === undefined ? undefined : issue(problem, 'INVALID_TOPIC')
})

/** Rejects a second entry for the same topic and partition (the broker keys its work by them). */
export function uniquePartitions(
  entries: readonly { readonly topic: string; readonly partition: number }[],
  field = 'partitions',
): Issue | undefined {
  if (entries.length < 2) return undefined
  if (entries.length <= 16) {
    // the common request names a few partitions: compare pairs rather than build a set
    for (let i = 1; i < entries.length; i++) {
      const e = entries[i]!
      for (let j = 0; j < i; j++) {
        if (entries[j]!.partition === e.partition && entries[j]!.topic === e.topic) {
          return { path: [field, i], reason: `repeats ${e.topic}/${e.partition}`, code: 'INVALID_REQUEST' }
        }
      }
    }
    return undefined
  }
  const seen = new Set<string>()
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!
    // topic names cannot contain a space, so the key is unambiguous
    const key = `${e.topic} ${e.partition}`
    if (seen.has(key)) return { path: [field, i], reason: `repeats ${e.topic}/${e.partition}`, code: 'INVALID_REQUEST' }
    seen.add(key)
  }
  return undefined
}
