/**
 * Recovery at node start: every write-ahead log the previous run left is replayed into
 * the partition stores of the groups it mentions, before any group opens.
 *
 * Layout: `<data-dir>/wal/<generation>/<log>/` — one generation per run of the node, one
 * log per worker thread (and one for the main thread's controller group). A start drains
 * every older generation, oldest first, into the stores (synced), and the node writes a
 * fresh generation; the old ones are deleted only once every group has written its
 * checkpoint into the new one (`removeGenerations`), so a crash in between replays them
 * again, which is harmless: replay is idempotent by index. Because the stores are whole
 * after a drain, a group may move to another worker between runs (another `--workers`).
 *
 * Per group, the records are replayed in order over what its store holds:
 * - entries at or below the store's applied index are committed and applied: skipped;
 * - the rest replace the store's unapplied entries from their first index on (Raft's
 *   suffix replacement; see log-engine.ts); a gap between them is lost data: refused;
 * - the hard state is the newest of the store's and the log's (term, then vote, then
 *   commit never go back);
 * - a Checkpoint is a promise that the store was synced up to its index: a store behind
 *   its newest checkpoint lost synced data, and is refused with its directory named;
 * - a Snapshot says the Raft core installed a leader's snapshot, which replaced the log:
 *   the entries before it are dropped, and a store whose applied state is behind it must
 *   hold that snapshot as received (its pending snapshot, written and synced before the
 *   core was given it: src/replica/snapshot-receiver.ts), which becomes its applied state
 *   here, its old unapplied entries gone (a crash between the WAL's record and the
 *   store's own install); a store holding neither lost synced data, and is refused;
 * - a group whose last record is Removed was deleted: its records are ignored;
 * - a store that nothing changed since its last checkpoint is not opened here: the group
 *   checks its checkpoint when it opens (`expect`).
 *
 * Imports node:path, src/base, src/raft, ./wal, ./partition-store and ./log-engine.
 */
import { join } from 'node:path'
import { fail, ok } from '../base/index.js'
import type { Result } from '../base/index.js'
import { EntryType } from '../raft/index.js'
import type { Entry, HardState } from '../raft/index.js'
import { Wal } from './wal/index.js'
import type { WalFs, WalRecord } from './wal/index.js'
import { openGroupStore } from './partition-store.js'
import type { OpenStore } from './partition-store.js'
import { WalRecordType } from './log-engine.js'

export type RecoveryError = 'WAL_CORRUPT' | 'WAL_IO' | 'WAL_INCOMPATIBLE' | 'STORE_CORRUPT' | 'STORE_MISSING' | 'STORE_IN_USE' | 'STORE_INCOMPATIBLE' | 'STORE_IO' | 'STORE_FULL' | 'STORE_FAILED'

export interface RecoveryLogger {
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
}

export interface RecoveryReport {
  /** Generations replayed (they stay on disk until `removeGenerations`). */
  readonly generations: readonly string[]
  /** The generation this run writes. */
  readonly nextGeneration: string
  readonly records: number
  /** Groups whose stores were brought up to date. */
  readonly groups: number
  /** Groups whose store took in the snapshot the WAL says their core installed (a crash came between the two). */
  readonly snapshotsInstalled: number
  /**
   * Every group the logs vouch for, with the applied index its store must hold at least
   * (its newest checkpoint): a group opened later checks it (`GroupStore.open` with
   * `mustExist`), since a store nothing changed since was not reopened here.
   */
  readonly expect: ReadonlyMap<number, number>
  readonly tornBytesDropped: number
}

/** What one group's records say, folded in WAL order (`replayRecord`). */
export interface GroupReplay {
  entries: Entry[]
  hardState: HardState | null
  checkpoint: number
  removed: boolean
  /** The newest Snapshot record (a leader's snapshot the core installed), or null. */
  snapshot: { index: number; term: number } | null
  /** Records after the last completed checkpoint's Begin: the store lacks something. */
  dirty: boolean
  /** A Begin without its Checkpoint yet, and whether records came after it. */
  inCheckpoint: boolean
  sinceBegin: boolean
}

const GENERATION = /^\d{8}$/

/** The generations under `walRoot`, oldest first. */
export function listGenerations(fs: WalFs, walRoot: string): Result<string[], 'WAL_IO'> {
  if (!fs.exists(walRoot)) return ok([])
  const names = fs.list(walRoot)
  if (!names.ok) return fail('WAL_IO', `cannot list ${walRoot}: ${names.error.code}`)
  return ok(names.value.filter((n) => GENERATION.test(n)).sort())
}

/** Replays every generation under `walRoot` into the stores `groupDir` names. */
export async function recoverWals(opts: {
  readonly fs: WalFs
  readonly walRoot: string
  readonly groupDir: (group: number) => string
  readonly log: RecoveryLogger
  /** How a group's store is opened (default: its LevelDB; the simulator's are in memory). */
  readonly openStore?: OpenStore
}): Promise<Result<RecoveryReport, RecoveryError>> {
  const { fs, walRoot, log } = opts
  const listed = listGenerations(fs, walRoot)
  if (!listed.ok) return listed
  const generations = listed.value
  const replays = new Map<number, GroupReplay>()
  let records = 0
  let torn = 0
  for (const gen of generations) {
    const logs = fs.list(join(walRoot, gen))
    if (!logs.ok) return fail('WAL_IO', `cannot list ${join(walRoot, gen)}: ${logs.error.code}`)
    for (const name of logs.value.sort()) {
      const dir = join(walRoot, gen, name)
      let bad: string | null = null
      const opened = Wal.open({ fs, dir }, (rec: WalRecord) => {
        records++
        if (bad === null) bad = replayRecord(replays, rec)
      })
      if (!opened.ok) return opened
      const { wal, report } = opened.value
      wal.close()
      if (report.tornBytesDropped > 0) {
        torn += report.tornBytesDropped
        log.warn({ wal: dir, bytes: report.tornBytesDropped }, 'dropped the torn tail of a write-ahead log (a write a crash or a full disk interrupted, never acknowledged)')
      }
      if (bad !== null) return fail('WAL_CORRUPT', `write-ahead log ${dir}: ${bad}`)
    }
  }
  let groups = 0
  let installed = 0
  const expect = new Map<number, number>()
  for (const [group, r] of replays) {
    if (r.removed) continue
    expect.set(group, r.checkpoint)
    if (!r.dirty) continue
    const done = await intoStore(opts.openStore ?? openGroupStore, opts.groupDir(group), group, r)
    if (!done.ok) return done
    groups++
    if (done.value) {
      installed++
      log.info({ group, index: r.snapshot?.index }, 'the partition store took in the snapshot its write-ahead log says was installed')
    }
  }
  const last = generations.length > 0 ? Number(generations[generations.length - 1]) : 0
  const nextGeneration = String(last + 1).padStart(8, '0')
  if (generations.length > 0) log.info({ generations: generations.length, records, groups, tornBytes: torn }, 'write-ahead logs replayed into the partition stores')
  return ok({ generations, nextGeneration, records, groups, snapshotsInstalled: installed, tornBytesDropped: torn, expect })
}

/** Deletes the replayed generations (once the new one holds every group's checkpoint). */
export function removeGenerations(fs: WalFs, walRoot: string, generations: readonly string[]): Result<null, 'WAL_IO'> {
  const io = (what: string, r: { ok: false; error: { code: string } }) => fail('WAL_IO' as const, `cannot remove ${what}: ${r.error.code}`)
  for (const gen of generations) {
    const dir = join(walRoot, gen)
    const logs = fs.list(dir)
    if (!logs.ok) return io(dir, logs)
    for (const name of logs.value) {
      const sub = join(dir, name)
      const files = fs.list(sub)
      if (!files.ok) return io(sub, files)
      for (const f of files.value) {
        const r = fs.remove(join(sub, f))
        if (!r.ok) return io(join(sub, f), r)
      }
      const r = fs.removeDir(sub)
      if (!r.ok) return io(sub, r)
    }
    const r = fs.removeDir(dir)
    if (!r.ok) return io(dir, r)
  }
  if (generations.length > 0) {
    const r = fs.syncDir(walRoot)
    if (!r.ok) return io(walRoot, r)
  }
  return ok(null)
}

/**
 * Folds one record into its group's replay; a string says why the log cannot be trusted.
 * (Exported for hosts that replay a WAL into memory, as the simulator does.)
 */
export function replayRecord(replays: Map<number, GroupReplay>, rec: WalRecord): string | null {
  let r = replays.get(rec.group)
  if (!r) {
    r = { entries: [], hardState: null, checkpoint: 0, removed: false, snapshot: null, dirty: false, inCheckpoint: false, sinceBegin: false }
    replays.set(rec.group, r)
  }
  if (rec.type === WalRecordType.Entry || rec.type === WalRecordType.ConfEntry || rec.type === WalRecordType.HardState || rec.type === WalRecordType.Snapshot) {
    r.dirty = true
    r.sinceBegin = true
  }
  switch (rec.type) {
    case WalRecordType.Entry:
    case WalRecordType.ConfEntry: {
      // a copy: the WAL hands out views into buffers it reuses for the next reads
      const e: Entry = { index: rec.index, term: rec.term, type: rec.type === WalRecordType.Entry ? EntryType.Normal : EntryType.ConfChange, data: rec.payload.slice() }
      const ents = r.entries
      const first = ents.length > 0 ? ents[0]!.index : e.index
      if (e.index > first + ents.length) return `group ${rec.group}: entry ${e.index} follows entry ${first + ents.length - 1}`
      if (e.index < first) r.entries = [e]
      else {
        ents.length = e.index - first
        ents.push(e)
      }
      return null
    }
    case WalRecordType.HardState: {
      if (rec.payload.length !== 4) return `group ${rec.group}: a hard-state record of ${rec.payload.length} bytes`
      const vote = (rec.payload[0]! << 24) | (rec.payload[1]! << 16) | (rec.payload[2]! << 8) | rec.payload[3]!
      r.hardState = newerHardState(r.hardState, { term: rec.term, vote: vote >>> 0, commit: rec.index })
      return null
    }
    case WalRecordType.Snapshot:
      // a snapshot installed from a leader replaces the log; its state went to the store
      r.entries = []
      r.snapshot = { index: rec.index, term: rec.term }
      return null
    case WalRecordType.CheckpointBegin:
      r.inCheckpoint = true
      r.sinceBegin = false
      return null
    case WalRecordType.Checkpoint:
      // its Begin may have gone with a retired segment: then what came before it here may
      // postdate the state the store got, so the group stays as dirty as it was
      if (r.inCheckpoint) r.dirty = r.sinceBegin
      r.inCheckpoint = false
      r.checkpoint = Math.max(r.checkpoint, rec.index)
      return null
    case WalRecordType.Removed:
      r.removed = true
      r.entries = []
      return null
    default:
      return `group ${rec.group}: unknown record type ${rec.type}`
  }
}

/** The newer of two hard states (term, then vote, then commit never go back). */
export function newerHardState(a: HardState | null, b: HardState | null): HardState | null {
  if (a === null) return b
  if (b === null) return a
  if (a.term !== b.term) return a.term > b.term ? a : b
  return { term: a.term, vote: a.vote || b.vote, commit: Math.max(a.commit, b.commit) }
}

/** Brings one store up to date with its replay; true when it took in an installed snapshot. */
async function intoStore(openStore: OpenStore, dir: string, group: number, r: GroupReplay): Promise<Result<boolean, RecoveryError>> {
  const opened = await openStore(dir, { mustExist: true, expectApplied: r.checkpoint })
  if (!opened.ok) return opened
  const { store, state } = opened.value
  try {
    let applied = state.applied?.index ?? 0
    let tail = state.entries
    let installed = false
    const snap = r.snapshot
    if (snap !== null && snap.index > applied) {
      // the core installed it (the WAL says so) and the store had not yet: it holds it as received
      const p = state.pendingSnapshot
      if (p === null || p.index !== snap.index || p.term !== snap.term) {
        const held = p === null ? 'no received snapshot' : `a received snapshot at ${p.index} (term ${p.term})`
        return fail('STORE_CORRUPT', `group store ${dir} (group ${group}) holds state up to Raft index ${applied} and ${held}, but its write-ahead log says a snapshot at ${snap.index} (term ${snap.term}) was installed: restore it from a replica or a backup`)
      }
      store.saveApplied(p)
      store.putPendingSnapshot(null)
      store.replaceEntries(applied + 1, applied + tail.length, [])
      applied = p.index
      tail = []
      installed = true
    }
    const wal = r.entries.filter((e) => e.index > applied)
    let merged: readonly Entry[] = tail
    if (wal.length > 0) {
      const from = wal[0]!.index
      const tailEnd = applied + tail.length
      if (from > tailEnd + 1) {
        return fail('STORE_CORRUPT', `group store ${dir} (group ${group}) ends at Raft index ${tailEnd}, and its write-ahead log resumes at ${from}: entries ${tailEnd + 1}..${from - 1} are lost`)
      }
      merged = tail.slice(0, from - applied - 1).concat(wal)
    }
    const hs = newerHardState(state.hardState, r.hardState)
    const tailLast = applied + tail.length
    const changed = installed || merged !== tail || hs !== state.hardState
    if (changed) {
      store.replaceEntries(applied + 1, tailLast, merged)
      if (hs) store.putHardState(hs)
      const w = await store.flush({ sync: true })
      if (!w.ok) return w
    }
    return ok(installed)
  } finally {
    await store.close()
  }
}
