/**
 * DataDir: a node's data directory, who may use it, and where data no topic owns goes.
 *
 * Layout:
 *   <dataDir>/meta.json                      {"formatVersion": 2, "nodeId": 1, "createdAt": "<ISO time>"}
 *   <dataDir>/lock/                          an empty LevelDB, open while the directory is: its LOCK is the lock
 *   <dataDir>/lock.pid                       the holder's pid, only to name it in messages
 *   <dataDir>/groups/<groupId>/              one group replica's files (its LevelDB), opened by their owners
 *   <dataDir>/quarantine/<groupId>.<time>/   a group directory set aside (time: ISO 8601 UTC, no colons)
 *
 * The lock. One process at a time: `open` opens the LevelDB in lock/ and keeps it open
 * until `close`, and refuses a directory another process holds ("data directory ./data
 * is in use by process 1234"). LevelDB holds its LOCK file with fcntl(F_SETLK), a lock
 * the kernel drops when the process's descriptors close, which exit does before the
 * process is a zombie. So a node restarts at once after kill -9, reaped or not, and a
 * reused pid never makes a dead holder look alive. The pid file is written once the lock
 * is held and removed before it is let go; it decides nothing (after kill -9 it names a
 * dead process until the next holder overwrites it). What keeps the lock a lock:
 * - nothing but LevelDB opens lock/LOCK in a process that holds it (POSIX drops a
 *   process's fcntl locks on a file when ANY descriptor of it that process has closes);
 * - nobody deletes lock/ (a new LOCK file would be a second, independent lock);
 * - a local file system (on NFS, fcntl locks are only as good as its lock manager).
 * LevelDB also refuses a second opener within one process; a set of the real paths open
 * here gives that case its own message. Why this and not a package: proper-lockfile and
 * lockfile judge a lock stale by its age, so a dead holder blocks for the stale period
 * and a live one that stalls is taken over; fs-ext and os-lock reach flock through
 * native addons compiled at install. classic-level is already here, prebuilt.
 * Every group's LevelDB has its own LOCK as well.
 *
 * `meta.json` ties the directory to a node id and a format version, checked at open,
 * so a node never starts on another node's data or on a layout it cannot read. It is
 * written atomically (temp file, fsync, rename, fsync of the directory).
 *
 * Quarantine, never delete because metadata forgot (DESIGN §4): `quarantineGroup` renames
 * a group's directory into quarantine/ and fsyncs both directories, so a crash leaves it
 * in exactly one of them. It stays there until an operator removes it with
 * `purgeQuarantine` (`raftmq data quarantine purge`, which takes the lock, so never while
 * a node runs). `listQuarantineAt` reads without the lock, safe beside a running node.
 *
 * Errors are values (Result) with stable codes and messages naming the paths; group ids
 * are validated (asserted) because they become path components.
 *
 * Imports classic-level, node:fs, node:path and src/base.
 */
import { lstat, mkdir, open, readFile, readdir, realpath, rename, rm, statfs, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { ClassicLevel } from 'classic-level'
import { assert, fail, ok } from '../base/index.js'
import type { Result } from '../base/index.js'

/**
 * 2: WAL format 2 (sector stamps) and produce command format 2. A build of format 1 must
 * refuse such a directory rather than read it: it would drop the commands it cannot
 * decode, and their offsets with them.
 */
export const DATA_DIR_FORMAT_VERSION = 2

export interface DataDirMeta {
  readonly formatVersion: number
  readonly nodeId: number
  readonly createdAt: string
}

export type DataDirError = 'DATA_DIR_IN_USE' | 'DATA_DIR_NOT_FOUND' | 'DATA_DIR_INVALID' | 'DATA_DIR_INCOMPATIBLE' | 'DATA_DIR_WRONG_NODE' | 'DATA_DIR_IO'

/** A group id: a non-negative integer (group 0 is the controller) or a short name of [A-Za-z0-9._-]. */
export type GroupId = number | string

/** A group directory in quarantine/ (or anything else found there). */
export interface QuarantinedGroup {
  /** Its name in quarantine/, which `purgeQuarantine` takes. */
  readonly name: string
  /** The group it was, or null for an entry `quarantineGroup` did not name. */
  readonly group: string | null
  readonly path: string
  /** The total size of its files (apparent size, as `du --apparent-size`). */
  readonly bytes: number
  /** When it was quarantined: from its name, else its modification time. */
  readonly quarantinedAt: Date
}

const LOCK_DIR = 'lock'
const PID_FILE = 'lock.pid'
/** The pid file that was the lock before lock/ (an older raftmq's, left by kill -9). */
const LEGACY_LOCK_FILE = 'raftmq.lock'
const META_FILE = 'meta.json'
const GROUPS_DIR = 'groups'
const BALLAST_FILE = 'ballast'
const QUARANTINE_DIR = 'quarantine'
const GROUP_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/
/** `<group>.<time>`, and `-<n>` when the same group was quarantined twice in one millisecond. */
const QUARANTINE_NAME = /^([A-Za-z0-9][A-Za-z0-9._-]{0,127})\.(\d{4}-\d{2}-\d{2}T\d{6}\.\d{3}Z)(?:-\d+)?$/
const QUARANTINE_SUFFIXES_MAX = 100
/** Directory levels counted under a quarantined group (a LevelDB is one level). */
const QUARANTINE_DEPTH_MAX = 16

type LockDb = ClassicLevel<string, string>

/** Real paths of the data directories open in this process (for a clearer message than LevelDB's). */
const openInThisProcess = new Set<string>()

export interface DataDirOptions {
  readonly nodeId: number
}

export class DataDir {
  /** The path as given (used in messages, so they name what the operator typed). */
  readonly path: string
  readonly meta: DataDirMeta
  readonly #real: string
  readonly #lock: LockDb
  #closed = false

  private constructor(path: string, real: string, meta: DataDirMeta, lock: LockDb) {
    this.path = path
    this.#real = real
    this.meta = meta
    this.#lock = lock
  }

  /** Opens (creating if missing) the data directory of node `nodeId`, taking its lock. */
  static open(path: string, opts: DataDirOptions): Promise<Result<DataDir, DataDirError>> {
    assert(Number.isSafeInteger(opts.nodeId) && opts.nodeId > 0, `node id must be a positive integer, got ${opts.nodeId}`)
    return DataDir.#open(path, opts.nodeId)
  }

  /**
   * Opens an existing data directory, whichever node's it is, taking its lock: for
   * operator tools. Creates nothing but the lock; a path without meta.json is refused.
   */
  static openExisting(path: string): Promise<Result<DataDir, DataDirError>> {
    return DataDir.#open(path, null)
  }

  /** What is in `path`'s quarantine, read without the lock (safe while a node runs). */
  static async listQuarantineAt(path: string): Promise<Result<QuarantinedGroup[], DataDirError>> {
    const real = await existingRealPath(path)
    if (!real.ok) return real
    return readQuarantine(path, real.value)
  }

  static async #open(path: string, nodeId: number | null): Promise<Result<DataDir, DataDirError>> {
    let real: string
    if (nodeId === null) {
      const found = await existingRealPath(path)
      if (!found.ok) return found
      real = found.value
    } else {
      try {
        await mkdir(path, { recursive: true })
        real = await realpath(path)
      } catch (e) {
        return fail('DATA_DIR_IO', `cannot create data directory ${path}: ${message(e)}`)
      }
    }
    if (openInThisProcess.has(real)) return fail('DATA_DIR_IN_USE', `data directory ${path} is in use by this process (${process.pid}): it is already open`)
    openInThisProcess.add(real)
    const locked = await takeLock(path, real)
    if (!locked.ok) {
      openInThisProcess.delete(real)
      return locked
    }
    let meta: Result<DataDirMeta, DataDirError>
    try {
      meta = await checkMeta(path, real, nodeId)
    } catch (e) {
      meta = fail('DATA_DIR_IO', `data directory ${path}: ${message(e)}`)
    }
    if (!meta.ok) {
      await releaseLock(real, locked.value)
      return meta
    }
    return ok(new DataDir(path, real, meta.value, locked.value))
  }

  /**
   * The ballast (CockroachDB's emergency ballast): `bytes` of zeros kept in
   * `<dataDir>/ballast`, so that a node whose disk filled up can still start — opening a
   * LevelDB writes (its MANIFEST, a table from its log), the lock's included — and serve
   * reads. Before opening: with less free space than `bytes`, the ballast is released.
   * (Done before the lock is taken, since taking it writes; a ballast is only reserve
   * space, so releasing a running node's costs it nothing but its reserve.)
   */
  static async releaseBallastIfFull(path: string, bytes: number): Promise<boolean> {
    const file = join(path, BALLAST_FILE)
    const have = await lstat(file).then((st) => st.isFile() && st.size > 0, () => false)
    if (!have) return false
    const s = await statfs(path)
    if (s.bavail * s.bsize >= bytes) return false
    await unlink(file)
    return true
  }

  /** Writes the ballast again when it is missing and the disk has room for it twice over. */
  async ensureBallast(bytes: number): Promise<boolean> {
    this.#assertOpen()
    const path = join(this.#real, BALLAST_FILE)
    const have = await lstat(path).then((st) => st.size, () => 0)
    if (bytes === 0 || have >= bytes) return false
    const s = await statfs(this.#real)
    if (s.bavail * s.bsize < 2 * bytes) return false
    const f = await open(path, 'w')
    try {
      const chunk = Buffer.alloc(Math.min(bytes, 1 << 20))
      for (let done = 0; done < bytes; done += chunk.length) await f.write(chunk, 0, Math.min(chunk.length, bytes - done), done)
      await f.sync()
    } finally {
      await f.close()
    }
    return true
  }

  /** `<dataDir>/groups/<groupId>`: where group `id`'s replica keeps its database. */
  groupDir(id: GroupId): string {
    return join(this.#real, GROUPS_DIR, groupName(id))
  }

  /** The groups that have a directory here (names as created: numbers appear as decimal strings). */
  async groupIds(): Promise<string[]> {
    this.#assertOpen()
    const names = await readdir(join(this.#real, GROUPS_DIR), { withFileTypes: true })
    return names.filter((d) => d.isDirectory() && GROUP_NAME.test(d.name)).map((d) => d.name).sort()
  }

  /** Deletes group `id`'s replica (its store must be closed: a replica moved elsewhere). */
  async removeGroup(id: GroupId): Promise<void> {
    this.#assertOpen()
    await rm(this.groupDir(id), { recursive: true, force: true })
  }

  /**
   * Moves group `id`'s directory (its store must be closed) to
   * `<dataDir>/quarantine/<id>.<time>` and returns that path. The data stays until
   * `purgeQuarantine` removes it.
   */
  async quarantineGroup(id: GroupId): Promise<Result<string, DataDirError>> {
    this.#assertOpen()
    const name = groupName(id)
    const from = this.groupDir(name)
    const quarantine = join(this.#real, QUARANTINE_DIR)
    try {
      if (!(await pathExists(from))) return fail('DATA_DIR_NOT_FOUND', `data directory ${this.path} has no group ${name} to quarantine (${from})`)
      if ((await mkdir(quarantine, { recursive: true })) !== undefined) await syncDir(this.#real)
      const stamp = new Date().toISOString().replace(/:/g, '')
      for (let n = 1; n <= QUARANTINE_SUFFIXES_MAX; n++) {
        const to = join(quarantine, n === 1 ? `${name}.${stamp}` : `${name}.${stamp}-${n}`)
        if (await pathExists(to)) continue
        await rename(from, to)
        await syncDir(join(this.#real, GROUPS_DIR))
        await syncDir(quarantine)
        return ok(to)
      }
      return fail('DATA_DIR_IO', `data directory ${this.path}: cannot quarantine group ${name}: ${QUARANTINE_SUFFIXES_MAX} names for ${name}.${stamp} are taken in ${quarantine}`)
    } catch (e) {
      return fail('DATA_DIR_IO', `data directory ${this.path}: cannot quarantine group ${name} (${from}): ${message(e)}`)
    }
  }

  /** What is in quarantine/, oldest first. */
  listQuarantine(): Promise<Result<QuarantinedGroup[], DataDirError>> {
    this.#assertOpen()
    return readQuarantine(this.path, this.#real)
  }

  /**
   * Deletes the named entries of quarantine/ (names as listed), or all of them, and
   * returns what it deleted. A name not in quarantine/ fails the call before anything
   * is deleted.
   */
  async purgeQuarantine(names: readonly string[] | 'all'): Promise<Result<QuarantinedGroup[], DataDirError>> {
    this.#assertOpen()
    const listed = await readQuarantine(this.path, this.#real)
    if (!listed.ok) return listed
    let chosen: QuarantinedGroup[] = listed.value
    if (names !== 'all') {
      const byName = new Map(listed.value.map((q) => [q.name, q]))
      const missing = names.filter((n) => !byName.has(n))
      if (missing.length > 0) {
        return fail('DATA_DIR_NOT_FOUND', `data directory ${this.path} has nothing in quarantine named ${missing.map((n) => JSON.stringify(n)).join(', ')}`)
      }
      chosen = [...new Set(names)].map((n) => byName.get(n)!)
    }
    const purged: QuarantinedGroup[] = []
    for (const q of chosen) {
      try {
        await rm(q.path, { recursive: true, force: true })
      } catch (e) {
        return fail('DATA_DIR_IO', `data directory ${this.path}: purged ${purged.length} of ${chosen.length}; cannot remove ${q.path}: ${message(e)}`)
      }
      purged.push(q)
    }
    if (purged.length > 0) {
      try {
        await syncDir(join(this.#real, QUARANTINE_DIR))
      } catch (e) {
        return fail('DATA_DIR_IO', `data directory ${this.path}: cannot sync ${join(this.#real, QUARANTINE_DIR)}: ${message(e)}`)
      }
    }
    return ok(purged)
  }

  /** Releases the lock (group stores are closed by their owners first). Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await releaseLock(this.#real, this.#lock)
  }

  #assertOpen(): void {
    assert(!this.#closed, () => `data directory ${this.path} is closed`)
  }
}

function groupName(id: GroupId): string {
  if (typeof id === 'number') {
    assert(Number.isSafeInteger(id) && id >= 0, `group id must be a non-negative integer, got ${id}`)
    return String(id)
  }
  assert(GROUP_NAME.test(id), () => `group id ${JSON.stringify(id)} is not a safe directory name ([A-Za-z0-9._-], at most 128)`)
  return id
}

/** The real path of an existing data directory: one with a meta.json. */
async function existingRealPath(path: string): Promise<Result<string, DataDirError>> {
  try {
    const real = await realpath(path)
    if (!(await pathExists(join(real, META_FILE)))) return fail('DATA_DIR_NOT_FOUND', `${path} is not a raftmq data directory: it has no ${META_FILE}`)
    return ok(real)
  } catch (e) {
    if (code(e) === 'ENOENT') return fail('DATA_DIR_NOT_FOUND', `there is no data directory ${path}`)
    return fail('DATA_DIR_IO', `data directory ${path}: ${message(e)}`)
  }
}

// ---- the lock -------------------------------------------------------------------------------

async function takeLock(display: string, real: string): Promise<Result<LockDb, DataDirError>> {
  const lockDir = join(real, LOCK_DIR)
  const db: LockDb = new ClassicLevel(lockDir)
  try {
    await db.open({ createIfMissing: true })
  } catch (e) {
    if (levelCode(e) !== 'LEVEL_LOCKED') return fail('DATA_DIR_IO', `data directory ${display}: cannot open its lock ${lockDir}: ${levelMessage(e)}`)
    const pidPath = join(real, PID_FILE)
    const holder = await readHolder(pidPath).catch(() => null)
    if (holder === null) return fail('DATA_DIR_IN_USE', `data directory ${display} is in use by another process (its lock ${lockDir} is held; ${pidPath} does not say by whom)`)
    return fail('DATA_DIR_IN_USE', `data directory ${display} is in use by process ${holder}`)
  }
  try {
    await writeAtomically(real, PID_FILE, `${process.pid}\n`)
    await unlink(join(real, LEGACY_LOCK_FILE)).catch((e: unknown) => {
      if (code(e) !== 'ENOENT') throw e
    })
  } catch (e) {
    await db.close().catch(() => undefined)
    return fail('DATA_DIR_IO', `data directory ${display}: cannot write ${join(real, PID_FILE)}: ${message(e)}`)
  }
  return ok(db)
}

/** The pid in the pid file, null if it is missing or not a pid. */
async function readHolder(pidPath: string): Promise<number | null> {
  let text: string
  try {
    text = await readFile(pidPath, 'utf8')
  } catch (e) {
    if (code(e) === 'ENOENT') return null
    throw e
  }
  const pid = Number(text.trim())
  return Number.isSafeInteger(pid) && pid > 0 ? pid : null
}

async function releaseLock(real: string, db: LockDb): Promise<void> {
  try {
    // while the lock is still ours, so it is never a successor's pid file
    await unlink(join(real, PID_FILE)).catch(() => undefined)
    await db.close()
  } finally {
    openInThisProcess.delete(real)
  }
}

// ---- quarantine -----------------------------------------------------------------------------

async function readQuarantine(display: string, real: string): Promise<Result<QuarantinedGroup[], DataDirError>> {
  const dir = join(real, QUARANTINE_DIR)
  try {
    const names = await readdir(dir).catch((e: unknown) => {
      if (code(e) === 'ENOENT') return []
      throw e
    })
    const out: QuarantinedGroup[] = []
    for (const name of names) {
      const path = join(dir, name)
      const st = await lstat(path).catch((e: unknown) => {
        if (code(e) === 'ENOENT') return null // purged meanwhile
        throw e
      })
      if (st === null) continue
      const m = QUARANTINE_NAME.exec(name)
      const at = m ? new Date(`${m[2]!.slice(0, 13)}:${m[2]!.slice(13, 15)}:${m[2]!.slice(15)}`) : st.mtime
      out.push({ name, group: m ? m[1]! : null, path, bytes: await treeBytes(path, 0), quarantinedAt: at })
    }
    return ok(out.sort((a, b) => a.quarantinedAt.getTime() - b.quarantinedAt.getTime() || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)))
  } catch (e) {
    return fail('DATA_DIR_IO', `data directory ${display}: cannot read ${dir}: ${message(e)}`)
  }
}

/** The apparent size of the files under `path` (symbolic links not followed, at most QUARANTINE_DEPTH_MAX levels). */
async function treeBytes(path: string, depth: number): Promise<number> {
  const st = await lstat(path).catch((e: unknown) => {
    if (code(e) === 'ENOENT') return null
    throw e
  })
  if (st === null) return 0
  if (!st.isDirectory()) return st.size
  if (depth >= QUARANTINE_DEPTH_MAX) return 0
  let bytes = 0
  for (const name of await readdir(path)) bytes += await treeBytes(join(path, name), depth + 1)
  return bytes
}

// ---- meta.json ------------------------------------------------------------------------------

/** Checks meta.json against `nodeId` (any node's when null), creating it and groups/ for a new node. */
async function checkMeta(display: string, real: string, nodeId: number | null): Promise<Result<DataDirMeta, DataDirError>> {
  const metaPath = join(real, META_FILE)
  let text: string | null = null
  try {
    text = await readFile(metaPath, 'utf8')
  } catch (e) {
    if (code(e) !== 'ENOENT') throw e
  }
  const groupsPath = join(real, GROUPS_DIR)
  if (text === null) {
    if (nodeId === null) return fail('DATA_DIR_NOT_FOUND', `${display} is not a raftmq data directory: it has no ${META_FILE}`)
    const groups = await readdir(groupsPath).catch((e: unknown) => {
      if (code(e) === 'ENOENT') return []
      throw e
    })
    if (groups.length > 0) {
      return fail('DATA_DIR_INVALID', `data directory ${display} holds group data but no ${META_FILE}: restore it, or start with an empty directory`)
    }
    const meta: DataDirMeta = { formatVersion: DATA_DIR_FORMAT_VERSION, nodeId, createdAt: new Date().toISOString() }
    await mkdir(groupsPath, { recursive: true })
    await writeAtomically(real, META_FILE, `${JSON.stringify(meta, null, 2)}\n`)
    return ok(meta)
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    return fail('DATA_DIR_INVALID', `data directory ${display}: ${META_FILE} is not JSON`)
  }
  const m = parsed as Partial<Record<keyof DataDirMeta, unknown>> | null
  if (m === null || typeof m !== 'object' || typeof m.formatVersion !== 'number' || typeof m.nodeId !== 'number' || typeof m.createdAt !== 'string') {
    return fail('DATA_DIR_INVALID', `data directory ${display}: ${META_FILE} lacks formatVersion, nodeId or createdAt`)
  }
  if (m.formatVersion !== DATA_DIR_FORMAT_VERSION) {
    const older = m.formatVersion < DATA_DIR_FORMAT_VERSION ? ' (written by an older raftmq, whose write-ahead log this one cannot read: start it with the build that wrote it, or move it aside and start empty)' : ''
    return fail('DATA_DIR_INCOMPATIBLE', `data directory ${display} has format ${m.formatVersion}; this raftmq reads format ${DATA_DIR_FORMAT_VERSION}${older}`)
  }
  if (nodeId !== null && m.nodeId !== nodeId) {
    return fail('DATA_DIR_WRONG_NODE', `data directory ${display} belongs to node ${m.nodeId}, not node ${nodeId}`)
  }
  if (nodeId !== null) await mkdir(groupsPath, { recursive: true })
  return ok({ formatVersion: m.formatVersion, nodeId: m.nodeId, createdAt: m.createdAt })
}

async function writeAtomically(dir: string, name: string, text: string): Promise<void> {
  const tmp = join(dir, `${name}.tmp`)
  const f = await open(tmp, 'w')
  try {
    await f.writeFile(text)
    await f.sync()
  } finally {
    await f.close()
  }
  await rename(tmp, join(dir, name))
  await syncDir(dir)
}

async function syncDir(dir: string): Promise<void> {
  const d = await open(dir, 'r')
  try {
    await d.sync()
  } finally {
    await d.close()
  }
}

async function pathExists(path: string): Promise<boolean> {
  try {
    await lstat(path)
    return true
  } catch (e) {
    if (code(e) === 'ENOENT') return false
    throw e
  }
}

function code(e: unknown): string | undefined {
  const c = (e as { code?: unknown } | null)?.code
  return typeof c === 'string' ? c : undefined
}

/** A classic-level error's code: the cause's (LEVEL_LOCKED under LEVEL_DATABASE_NOT_OPEN) when it has one. */
function levelCode(e: unknown): string | undefined {
  return code((e as { cause?: unknown } | null)?.cause) ?? code(e)
}

function levelMessage(e: unknown): string {
  const cause = (e as { cause?: unknown } | null)?.cause
  return cause instanceof Error ? `${message(e)} (${cause.message})` : message(e)
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e)
}
