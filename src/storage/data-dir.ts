/**
 * DataDir: a node's data directory, and who may use it.
 *
 * Layout:
 *   <dataDir>/meta.json            {"formatVersion": 1, "nodeId": 1, "createdAt": "<ISO time>"}
 *   <dataDir>/raftmq.lock          the pid of the process that has the directory open
 *   <dataDir>/groups/<groupId>/    one LevelDB per group replica (raft-log-store.ts)
 *
 * One process at a time: `open` takes the lock file and refuses a directory another
 * live process holds ("data directory ./data is in use by process 1234"). The lock file
 * is created whole (written beside it, then hard-linked into place, which fails if it
 * exists), so nobody ever sees it empty. A lock whose process is gone (checked with
 * `process.kill(pid, 0)`) is stale and taken over; so is one holding our own pid, which
 * after a restart in a container (pid 1 again) means a previous life of this node.
 * The pid file is advisory (two processes racing to take over the same stale lock can
 * both win, and pids are per namespace): the hard guarantee is LevelDB's own LOCK on
 * every group database, which refuses a second opener with STORE_IN_USE.
 *
 * `meta.json` ties the directory to a node id and a format version, checked at open,
 * so a node never starts on another node's data or on a layout it cannot read. It is
 * written atomically (temp file, fsync, rename, fsync of the directory).
 *
 * Errors are values (Result) with stable codes; group ids are validated (asserted)
 * because they become path components.
 *
 * Imports node:fs, node:path, src/base and ./raft-log-store.
 */
import { link, mkdir, open, readFile, readdir, realpath, rename, rm, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { assert, fail, ok } from '../base/index.js'
import type { Result } from '../base/index.js'
import { LevelRaftStorage } from './raft-log-store.js'
import type { LevelRaftStorageOptions, StoreOpenError } from './raft-log-store.js'

export const DATA_DIR_FORMAT_VERSION = 1

export interface DataDirMeta {
  readonly formatVersion: number
  readonly nodeId: number
  readonly createdAt: string
}

export type DataDirError = 'DATA_DIR_IN_USE' | 'DATA_DIR_INVALID' | 'DATA_DIR_INCOMPATIBLE' | 'DATA_DIR_WRONG_NODE' | 'DATA_DIR_IO'

/** A group id: a non-negative integer (group 0 is the controller) or a short name of [A-Za-z0-9._-]. */
export type GroupId = number | string

const LOCK_FILE = 'raftmq.lock'
const META_FILE = 'meta.json'
const GROUPS_DIR = 'groups'
const GROUP_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/

/** Real paths of the data directories open in this process (a pid file cannot tell us apart from ourselves). */
const openInThisProcess = new Set<string>()

export interface DataDirOptions {
  readonly nodeId: number
}

export class DataDir {
  /** The path as given (used in messages, so they name what the operator typed). */
  readonly path: string
  readonly meta: DataDirMeta
  readonly #real: string
  #closed = false

  private constructor(path: string, real: string, meta: DataDirMeta) {
    this.path = path
    this.#real = real
    this.meta = meta
  }

  /** Opens (creating if missing) the data directory of node `nodeId`, taking its lock. */
  static async open(path: string, opts: DataDirOptions): Promise<Result<DataDir, DataDirError>> {
    assert(Number.isSafeInteger(opts.nodeId) && opts.nodeId > 0, `node id must be a positive integer, got ${opts.nodeId}`)
    let real: string
    try {
      await mkdir(path, { recursive: true })
      real = await realpath(path)
    } catch (e) {
      return fail('DATA_DIR_IO', `cannot create data directory ${path}: ${message(e)}`)
    }
    if (openInThisProcess.has(real)) return fail('DATA_DIR_IN_USE', `data directory ${path} is in use by this process (${process.pid}): it is already open`)
    const locked = await takeLock(path, join(real, LOCK_FILE))
    if (!locked.ok) return locked
    openInThisProcess.add(real)
    let meta: Result<DataDirMeta, DataDirError>
    try {
      meta = await checkMeta(path, real, opts.nodeId)
    } catch (e) {
      meta = fail('DATA_DIR_IO', `data directory ${path}: ${message(e)}`)
    }
    if (!meta.ok) {
      await releaseLock(real)
      return meta
    }
    return ok(new DataDir(path, real, meta.value))
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

  /** Opens (creating if missing) group `id`'s replica store. */
  openGroup(id: GroupId, opts: LevelRaftStorageOptions): Promise<Result<LevelRaftStorage, StoreOpenError>> {
    this.#assertOpen()
    return LevelRaftStorage.open(this.groupDir(id), opts)
  }

  /** Deletes group `id`'s replica (its store must be closed: a replica moved elsewhere). */
  async removeGroup(id: GroupId): Promise<void> {
    this.#assertOpen()
    await rm(this.groupDir(id), { recursive: true, force: true })
  }

  /** Releases the lock (group stores are closed by their owners first). Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await releaseLock(this.#real)
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

// ---- the lock file -------------------------------------------------------------------------

async function takeLock(display: string, lockPath: string): Promise<Result<null, DataDirError>> {
  const mine = `${lockPath}.${process.pid}.tmp`
  try {
    await writeFile(mine, `${process.pid}\n`)
    // a few rounds: a stale lock removed by us (or released by its owner) may be taken by someone else first
    for (let round = 0; round < 5; round++) {
      try {
        await link(mine, lockPath)
        return ok(null)
      } catch (e) {
        if (code(e) !== 'EEXIST') throw e
      }
      const holder = await readHolder(lockPath)
      if (holder === 'gone') continue
      if (holder !== null && holder !== process.pid && isAlive(holder)) {
        return fail('DATA_DIR_IN_USE', `data directory ${display} is in use by process ${holder}`)
      }
      // stale: its process is gone, the file is not ours to read, or it is a previous life of this pid
      await unlink(lockPath).catch((e: unknown) => {
        if (code(e) !== 'ENOENT') throw e
      })
    }
    return fail('DATA_DIR_IN_USE', `data directory ${display}: its lock file ${lockPath} keeps changing hands; is another node starting on it?`)
  } catch (e) {
    return fail('DATA_DIR_IO', `data directory ${display}: cannot take the lock file ${lockPath}: ${message(e)}`)
  } finally {
    await unlink(mine).catch(() => undefined)
  }
}

/** The pid in the lock file, null if unreadable, 'gone' if the file vanished meanwhile. */
async function readHolder(lockPath: string): Promise<number | null | 'gone'> {
  let text: string
  try {
    text = await readFile(lockPath, 'utf8')
  } catch (e) {
    if (code(e) === 'ENOENT') return 'gone'
    throw e
  }
  const pid = Number(text.trim())
  return Number.isSafeInteger(pid) && pid > 0 ? pid : null
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    // EPERM: it exists but belongs to someone else, which still means in use
    return code(e) === 'EPERM'
  }
}

async function releaseLock(real: string): Promise<void> {
  openInThisProcess.delete(real)
  const lockPath = join(real, LOCK_FILE)
  // only our own lock: never delete one that a takeover gave to another process
  const holder = await readHolder(lockPath).catch(() => null)
  if (holder === process.pid) await unlink(lockPath).catch(() => undefined)
}

// ---- meta.json ------------------------------------------------------------------------------

async function checkMeta(display: string, real: string, nodeId: number): Promise<Result<DataDirMeta, DataDirError>> {
  const metaPath = join(real, META_FILE)
  let text: string | null = null
  try {
    text = await readFile(metaPath, 'utf8')
  } catch (e) {
    if (code(e) !== 'ENOENT') throw e
  }
  const groupsPath = join(real, GROUPS_DIR)
  if (text === null) {
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
    return fail('DATA_DIR_INCOMPATIBLE', `data directory ${display} has format ${m.formatVersion}; this raftmq reads format ${DATA_DIR_FORMAT_VERSION}`)
  }
  if (m.nodeId !== nodeId) {
    return fail('DATA_DIR_WRONG_NODE', `data directory ${display} belongs to node ${m.nodeId}, not node ${nodeId}`)
  }
  await mkdir(groupsPath, { recursive: true })
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
  const d = await open(dir, 'r')
  try {
    await d.sync()
  } finally {
    await d.close()
  }
}

function code(e: unknown): string | undefined {
  const c = (e as { code?: unknown } | null)?.code
  return typeof c === 'string' ? c : undefined
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e)
}
