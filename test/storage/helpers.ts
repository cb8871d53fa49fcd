/**
 * Helpers for the storage tests: temp directories, hand-built Readies and entries, and
 * spawning fixture processes.
 */
import { spawn } from 'node:child_process'
import type { ChildProcessWithoutNullStreams } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { EntryType } from '../../src/raft/index.js'
import type { Entry, HardState, Ready, Snapshot } from '../../src/raft/index.js'

export const root = join(import.meta.dirname, '..', '..')

/** A fresh directory under the OS temp dir, and its removal (for beforeEach/afterEach). */
export async function tempDir(): Promise<{ readonly dir: string; readonly remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'raftmq-storage-'))
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) }
}

/** Deterministic data for entry (index, term): its bytes say where they belong, so a misplaced entry shows. */
export function dataFor(index: number, term: number, bytes = 16 + ((index * 7919 + term * 104729) % 300)): Uint8Array {
  const d = new Uint8Array(bytes)
  for (let k = 0; k < bytes; k++) d[k] = (index * 31 + term * 17 + k) & 0xff
  return d
}

export function ent(index: number, term: number, data: Uint8Array = dataFor(index, term), type: EntryType = EntryType.Normal): Entry {
  return { index, term, type, data }
}

/** Entries from `from` on, one per term in `terms`. */
export function ents(from: number, terms: readonly number[]): Entry[] {
  return terms.map((t, k) => ent(from + k, t))
}

/** A Ready carrying what the host must persist (and, optionally, committed entries it hands out). */
export function ready(fields: { entries?: readonly Entry[]; hardState?: HardState | null; snapshot?: Snapshot | null; committedEntries?: readonly Entry[] }): Ready {
  const entries = fields.entries ?? []
  const hardState = fields.hardState ?? null
  const snapshot = fields.snapshot ?? null
  return {
    softState: null,
    hardState,
    snapshot,
    entries,
    committedEntries: fields.committedEntries ?? [],
    messages: [],
    messagesAfterPersist: [],
    mustSync: hardState !== null || snapshot !== null || entries.length > 0,
  }
}

/** Runs `node --import tsx <fixture> ...args` from the repository root. */
export function spawnFixture(name: string, args: readonly string[]): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, ['--import', 'tsx', join(root, 'test', 'storage', 'fixtures', name), ...args], {
    cwd: root,
    stdio: ['pipe', 'pipe', 'pipe'],
  })
}

/** Resolves with the first stdout line matching `re` (rejects if the process exits first). */
export function waitForLine(child: ChildProcessWithoutNullStreams, re: RegExp): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    let buf = ''
    let err = ''
    const onData = (chunk: Buffer): void => {
      buf += chunk.toString('utf8')
      for (const line of buf.split('\n')) {
        const m = line.match(re)
        if (m) {
          child.stdout.off('data', onData)
          resolve(m)
          return
        }
      }
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')))
    child.once('exit', (code) => reject(new Error(`fixture exited (${code}) before printing ${re}: ${err}`)))
  })
}

/** Kills with SIGKILL and waits for the exit. */
export async function killHard(child: ChildProcessWithoutNullStreams): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.kill('SIGKILL')
  await exited
}
