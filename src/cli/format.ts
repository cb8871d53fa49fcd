/**
 * How `raftmq consume` writes a message: the named formats (`value`, `kv`, `json`) and
 * kcat-style format strings, compiled once into a function from a message to its bytes.
 *
 * Format strings (kcat's `-f`): %t topic, %p partition, %o offset, %k key, %s value,
 * %h headers (name=value pairs joined by commas), %T timestamp in ms, %S value size in
 * bytes (-1 for null), %K key size (-1 for null), %% a percent sign; escapes \n \t \r
 * \0 \\. Keys and values are written as their bytes, as kcat does; an unknown field or
 * escape is written as it stands, so a typo shows in the output rather than vanishing.
 *
 * Imports client (types) only.
 */
import type { ConsumedMessage } from '../client/index.js'

export type Formatter = (topic: string, partition: number, m: ConsumedMessage) => Buffer

type Part = string | ((topic: string, partition: number, m: ConsumedMessage) => Uint8Array | string)

const empty = new Uint8Array(0)
const newline = Buffer.from('\n')
const tab = Buffer.from('\t')
const utf8 = new TextDecoder('utf-8', { fatal: true })

/** UTF-8 text as a string, other bytes as {"base64": ...}, null as null. */
export function jsonBytes(bytes: Uint8Array | null): string | { base64: string } | null {
  if (bytes === null) return null
  try {
    return utf8.decode(bytes)
  } catch {
    return { base64: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64') }
  }
}

const fields: Record<string, Part> = {
  t: (topic) => topic,
  p: (_t, partition) => String(partition),
  o: (_t, _p, m) => String(m.offset),
  k: (_t, _p, m) => m.key ?? empty,
  s: (_t, _p, m) => m.value ?? empty,
  h: (_t, _p, m) =>
    Object.entries(m.headers)
      .map(([k, v]) => `${k}=${v === null ? '' : Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString()}`)
      .join(','),
  T: (_t, _p, m) => String(m.timestamp),
  S: (_t, _p, m) => String(m.value === null ? -1 : m.value.byteLength),
  K: (_t, _p, m) => String(m.key === null ? -1 : m.key.byteLength),
}

/** The backslash escapes of format strings, and of produce's delimiters: \n \t \r \0 \\. */
export const escapes: Readonly<Record<string, string>> = { n: '\n', t: '\t', r: '\r', '0': '\0', '\\': '\\' }

/** The parts of a format string: literal text and field readers, in order. */
export function parseFormatString(format: string): Part[] {
  const parts: Part[] = []
  let text = ''
  for (let i = 0; i < format.length; i++) {
    const c = format[i]!
    const next = format[i + 1]
    if (c === '%' && next !== undefined && (next === '%' || next in fields)) {
      i++
      if (next === '%') text += '%'
      else {
        if (text !== '') parts.push(text)
        text = ''
        parts.push(fields[next]!)
      }
    } else if (c === '\\' && next !== undefined && next in escapes) {
      i++
      text += escapes[next]
    } else {
      text += c
    }
  }
  if (text !== '') parts.push(text)
  return parts
}

export function compileFormat(format: string): Formatter {
  switch (format) {
    case 'value':
      return (_t, _p, m) => Buffer.concat([m.value ?? empty, newline])
    case 'kv':
      return (_t, _p, m) => Buffer.concat([m.key ?? empty, tab, m.value ?? empty, newline])
    case 'json':
      return (topic, partition, m) => {
        const headers: Record<string, unknown> = {}
        for (const [k, v] of Object.entries(m.headers)) headers[k] = jsonBytes(v)
        const line = { topic, partition, offset: m.offset, timestamp: m.timestamp, key: jsonBytes(m.key), value: jsonBytes(m.value), headers }
        return Buffer.from(`${JSON.stringify(line)}\n`)
      }
  }
  const parts = parseFormatString(format).map((p) => (typeof p === 'string' ? Buffer.from(p) : p))
  return (topic, partition, m) => Buffer.concat(parts.map((p) => (p instanceof Uint8Array ? p : toBytes(p(topic, partition, m)))))
}

function toBytes(v: Uint8Array | string): Uint8Array {
  return typeof v === 'string' ? Buffer.from(v) : v
}
