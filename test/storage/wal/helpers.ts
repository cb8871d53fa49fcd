/**
 * Helpers for the WAL tests: deterministic records, opening a WAL (unwrapping the
 * Result and collecting what recovery replays), and a WalFs wrapper that counts calls.
 */
import { expect } from 'vitest'
import { Wal } from '../../../src/storage/wal/index.js'
import type { WalFs, WalOptions, WalRecord, WalRecoveryReport } from '../../../src/storage/wal/index.js'

export const DIR = '/data/wal/w0'

/** A record whose payload says where it belongs, so a misplaced or stale one shows. */
export function rec(group: number, index: number, term = 1, bytes = 20 + ((index * 7919 + group * 104729) % 90), type = 1): WalRecord {
  const payload = new Uint8Array(bytes)
  for (let k = 0; k < bytes; k++) payload[k] = (group * 131 + index * 31 + term * 17 + k) & 0xff
  return { group, type, index, term, payload }
}

/** A plain, comparable form of a record (payload copied). */
export interface Seen {
  readonly group: number
  readonly type: number
  readonly index: number
  readonly term: number
  readonly payload: number[]
  readonly seq: number
}

export function plain(r: WalRecord, seq = 0): Seen {
  return { group: r.group, type: r.type, index: r.index, term: r.term, payload: [...r.payload], seq }
}

export interface Opened {
  readonly wal: Wal
  readonly report: WalRecoveryReport
  readonly seen: Seen[]
}

export function openWal(fs: WalFs, opts: Partial<WalOptions> = {}): Opened {
  const seen: Seen[] = []
  const r = Wal.open({ fs, dir: DIR, ...opts }, (rec, seq) => seen.push(plain(rec, seq)))
  if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message}`)
  return { wal: r.value.wal, report: r.value.report, seen }
}

/** Opens and expects a failure; returns it. */
export function openFails(fs: WalFs, opts: Partial<WalOptions> = {}): { readonly code: string; readonly message: string } {
  const r = Wal.open({ fs, dir: DIR, ...opts }, () => {})
  if (r.ok) throw new Error('Wal.open succeeded where it should have failed')
  return r.error
}

/** Adds the records and commits them; throws on failure. Returns the seq they landed in. */
export function commitAll(wal: Wal, records: readonly WalRecord[]): number {
  for (const r of records) wal.add(r)
  const c = wal.commit()
  if (!c.ok) throw new Error(`${c.error.code}: ${c.error.message}`)
  return c.value.seq
}

/** Records and payloads only (no seq), for comparing what recovery returns with what was committed. */
export function strip(seen: readonly Seen[]): Omit<Seen, 'seq'>[] {
  return seen.map(({ seq: _seq, ...rest }) => rest)
}

export function expectRecords(seen: readonly Seen[], records: readonly WalRecord[]): void {
  expect(strip(seen)).toEqual(records.map((r) => strip([plain(r)])[0]))
}

export type CallCounts = Record<string, number>

/** A WalFs that forwards every call and counts it by name. */
export function counting(inner: WalFs): { readonly fs: WalFs; readonly counts: CallCounts; reset(): void } {
  const counts: CallCounts = {}
  const fs = new Proxy(inner, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver)
      if (typeof v !== 'function') return v
      return (...args: unknown[]) => {
        counts[String(prop)] = (counts[String(prop)] ?? 0) + 1
        return (v as (...a: unknown[]) => unknown).apply(target, args)
      }
    },
  })
  return {
    fs,
    counts,
    reset() {
      for (const k of Object.keys(counts)) delete counts[k]
    },
  }
}

/** Lets background work (promise continuations, fs.promises) run. */
export function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

/** A WalFs over `inner` whose datasync can be told to report success without syncing: a crash "during" that sync. */
export function lyingSync(inner: WalFs): { readonly fs: WalFs; lie(on: boolean): void } {
  let lying = false
  const fs = new Proxy(inner, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver)
      if (typeof v !== 'function') return v
      if (prop === 'datasync') return (file: number) => (lying ? { ok: true, value: undefined } : target.datasync(file))
      return (...args: unknown[]) => (v as (...a: unknown[]) => unknown).apply(target, args)
    },
  })
  return {
    fs,
    lie(on: boolean) {
      lying = on
    },
  }
}

/** Overwrites bytes of a file, durably (damage done behind the WAL's back). */
export function poke(fs: WalFs, path: string, offset: number, bytes: Uint8Array): void {
  const h = fs.open(path)
  if (!h.ok) throw new Error(h.error.message)
  fs.writev(h.value, [bytes], offset)
  fs.datasync(h.value)
  fs.close(h.value)
}

/** Replaces a file by its first `n` bytes, durably. */
export function truncate(fs: WalFs & { readAll(path: string): Uint8Array }, path: string, n: number): void {
  const keep = fs.readAll(path).slice(0, n)
  fs.remove(path)
  const h = fs.create(path)
  if (!h.ok) throw new Error(h.error.message)
  fs.writev(h.value, [keep], 0)
  fs.datasync(h.value)
  fs.close(h.value)
  fs.syncDir(path.slice(0, path.lastIndexOf('/')))
}

export function segmentPath(seq: number): string {
  return `${DIR}/${String(seq).padStart(10, '0')}.wal`
}
