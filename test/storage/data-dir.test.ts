import { spawn } from 'node:child_process'
import type { ChildProcessWithoutNullStreams } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, readFile, realpath, rm, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { ClassicLevel } from 'classic-level'
import { AssertionError } from '../../src/base/index.js'
import { DataDir } from '../../src/storage/index.js'
import { killHard, root, spawnFixture, tempDir, waitForLine } from './helpers.js'

let base: string
let remove: () => Promise<void>
let path: string
const toClose: DataDir[] = []

beforeEach(async () => {
  ;({ dir: base, remove } = await tempDir())
  path = join(base, 'data')
})

afterEach(async () => {
  for (const d of toClose.splice(0)) await d.close()
  await remove()
})

async function openDir(nodeId = 1): Promise<DataDir> {
  const r = await DataDir.open(path, { nodeId })
  if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message}`)
  toClose.push(r.value)
  return r.value
}

const pidFile = (): Promise<string> => readFile(join(path, 'lock.pid'), 'utf8').then((t) => t.trim())

/**
 * Starts the holder fixture as a child of `sleep`, which never waits for it: a holder
 * killed now stays a zombie until the sleep ends. The shell saves its stdin on fd 3
 * because a background job's stdin is /dev/null, and the holder runs until stdin ends.
 */
function spawnUnreapedHolder(args: readonly string[]): ChildProcessWithoutNullStreams {
  const fixture = join(root, 'test', 'storage', 'fixtures', 'hold-data-dir.ts')
  const script = 'exec 3<&0; node=$1; shift; "$node" --import tsx "$@" <&3 3<&- & exec sleep 60 3<&-'
  return spawn('/bin/sh', ['-c', script, 'sh', process.execPath, fixture, ...args], { cwd: root, stdio: ['pipe', 'pipe', 'pipe'] })
}

/**
 * `Z1` once `pid` is a zombie proper: dead, only its exit status left for a parent to reap.
 * (A killed multi-threaded process shows State Z as soon as its main thread exits,
 * while its other threads, the holders of its descriptors, may still be dying: `Z2`.)
 */
async function processState(pid: number): Promise<string | null> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => null)
  if (status === null) return null
  return `${status.match(/^State:\s+(\S)/m)?.[1]}${status.match(/^Threads:\s+(\d+)/m)?.[1]}`
}

/** Opens and closes the LevelDB in `dir`: 'ok', or the code (LEVEL_LOCKED) of why not. */
async function openGroupDb(dir: string): Promise<string> {
  const db = new ClassicLevel(dir)
  try {
    await db.open({ createIfMissing: true })
  } catch (e) {
    const err = e as { code?: string; cause?: { code?: string } }
    return err.cause?.code ?? err.code ?? String(e)
  }
  await db.close()
  return 'ok'
}

describe('storage - data directory', () => {
  it('creates meta.json, groups/, lock/ and a pid file holding our pid; close removes the pid file', async () => {
    const d = await openDir(4)
    const meta = JSON.parse(await readFile(join(path, 'meta.json'), 'utf8'))
    expect(meta).toMatchObject({ formatVersion: 2, nodeId: 4 })
    expect(Number.isNaN(Date.parse(meta.createdAt))).toBe(false)
    expect(d.meta).toEqual(meta)
    expect(await pidFile()).toBe(String(process.pid))
    expect(existsSync(join(path, 'lock', 'LOCK'))).toBe(true)
    expect(existsSync(join(path, 'groups'))).toBe(true)
    await d.close()
    expect(existsSync(join(path, 'lock.pid'))).toBe(false)
    const again = await openDir(4)
    expect(again.meta.createdAt).toBe(meta.createdAt)
  })

  it('refuses another node id, another format, a damaged meta.json, or groups without one', async () => {
    const d = await openDir(1)
    await d.close()
    const wrong = await DataDir.open(path, { nodeId: 2 })
    expect(wrong.ok ? 'ok' : wrong.error).toEqual({ code: 'DATA_DIR_WRONG_NODE', message: `data directory ${path} belongs to node 1, not node 2` })
    expect(existsSync(join(path, 'lock.pid'))).toBe(false) // a refused open leaves no pid file behind
    await openDir(1).then((again) => again.close()) // nor its lock

    await writeFile(join(path, 'meta.json'), JSON.stringify({ formatVersion: 3, nodeId: 1, createdAt: 'x' }))
    const newer = await DataDir.open(path, { nodeId: 1 })
    expect(newer.ok ? 'ok' : newer.error).toEqual({ code: 'DATA_DIR_INCOMPATIBLE', message: `data directory ${path} has format 3; this raftmq reads format 2` })
    await writeFile(join(path, 'meta.json'), JSON.stringify({ formatVersion: 1, nodeId: 1, createdAt: 'x' }))
    const older = await DataDir.open(path, { nodeId: 1 })
    expect(older.ok ? 'ok' : older.error.message).toMatch(/has format 1; this raftmq reads format 2 \(written by an older raftmq/)

    await writeFile(join(path, 'meta.json'), '{"formatVersion": 1,')
    const garbled = await DataDir.open(path, { nodeId: 1 })
    expect(garbled.ok ? 'ok' : garbled.error.code).toBe('DATA_DIR_INVALID')

    await mkdir(join(path, 'groups', '3'), { recursive: true })
    await writeFile(join(path, 'meta.json'), '{}')
    const lacking = await DataDir.open(path, { nodeId: 1 })
    expect(lacking.ok ? 'ok' : lacking.error.code).toBe('DATA_DIR_INVALID')
  })

  it('openExisting takes any node id but creates nothing: a missing directory or meta.json is DATA_DIR_NOT_FOUND', async () => {
    const missing = await DataDir.openExisting(path)
    expect(missing.ok ? 'ok' : missing.error).toEqual({ code: 'DATA_DIR_NOT_FOUND', message: `there is no data directory ${path}` })
    expect(existsSync(path)).toBe(false)
    await mkdir(path)
    const bare = await DataDir.openExisting(path)
    expect(bare.ok ? 'ok' : bare.error).toEqual({ code: 'DATA_DIR_NOT_FOUND', message: `${path} is not a raftmq data directory: it has no meta.json` })
    await (await openDir(6)).close()
    const found = await DataDir.openExisting(path)
    expect(found.ok ? found.value.meta.nodeId : found.error.code).toBe(6)
    if (found.ok) toClose.push(found.value)
    const node = await DataDir.open(path, { nodeId: 6 })
    expect(node.ok ? 'ok' : node.error.code).toBe('DATA_DIR_IN_USE')
  })

  it('refuses a second opener in the same process, and a pid file never decides', async () => {
    await mkdir(path)
    await writeFile(join(path, 'lock.pid'), `${process.ppid}\n`) // a live process, but it holds no lock
    const d = await openDir()
    expect(await pidFile()).toBe(String(process.pid))
    const second = await DataDir.open(path, { nodeId: 1 })
    expect(second.ok ? 'ok' : second.error.code).toBe('DATA_DIR_IN_USE')
    expect(second.ok ? '' : second.error.message).toContain(`data directory ${path} is in use by this process`)
    await d.close()
    await writeFile(join(path, 'raftmq.lock'), `${process.ppid}\n`) // the lock file of an older raftmq: tidied away
    await openDir()
    expect(existsSync(join(path, 'raftmq.lock'))).toBe(false)
  })

  it('lays out groups by id, lists and removes them, and rejects ids that are not safe names', async () => {
    const d = await openDir()
    expect(d.groupDir(7)).toBe(join(await realpath(path), 'groups', '7'))
    await mkdir(d.groupDir(7))
    await mkdir(d.groupDir('controller'))
    await writeFile(join(path, 'groups', 'not-a-dir'), '')
    expect(await d.groupIds()).toEqual(['7', 'controller'])
    await d.removeGroup(7)
    expect(await d.groupIds()).toEqual(['controller'])
    expect(() => d.groupDir('../etc')).toThrow(AssertionError)
    expect(() => d.groupDir(-1)).toThrow(AssertionError)
    expect(() => d.groupDir(1.5)).toThrow(AssertionError)
  })

  it('another live process is refused with its pid; once it is killed, its lock is free though its pid file stays', async () => {
    const holder = spawnFixture('hold-data-dir.ts', [path, '1', '9'])
    try {
      const [, pid] = await waitForLine(holder, /^locked (\d+)$/)
      expect(Number(pid)).toBe(holder.pid)
      const refused = await DataDir.open(path, { nodeId: 1 })
      expect(refused.ok ? 'ok' : refused.error).toEqual({ code: 'DATA_DIR_IN_USE', message: `data directory ${path} is in use by process ${pid}` })
      const tool = await DataDir.openExisting(path)
      expect(tool.ok ? 'ok' : tool.error.code).toBe('DATA_DIR_IN_USE')
      // the group's own LevelDB LOCK refuses too, whoever bypasses the data directory
      expect(await openGroupDb(join(path, 'groups', '9'))).toBe('LEVEL_LOCKED')
      // the pid file only names the holder: without it the refusal stands, naming nobody
      await unlink(join(path, 'lock.pid'))
      const unnamed = await DataDir.open(path, { nodeId: 1 })
      expect(unnamed.ok ? 'ok' : unnamed.error.code).toBe('DATA_DIR_IN_USE')
      expect(unnamed.ok ? '' : unnamed.error.message).toMatch(/is in use by another process \(its lock .*lock is held; .*lock\.pid does not say by whom\)$/)
      await writeFile(join(path, 'lock.pid'), `${pid}\n`)
    } finally {
      await killHard(holder)
    }
    expect(await pidFile()).toBe(String(holder.pid)) // left behind by kill -9
    const d = await openDir()
    expect(await pidFile()).toBe(String(process.pid))
    expect(await openGroupDb(d.groupDir(9))).toBe('ok')
  })

  it.skipIf(process.platform !== 'linux')('opens at once after kill -9 while the killed holder is still an unreaped zombie', async () => {
    const parent = spawnUnreapedHolder([path, '1', '9'])
    try {
      const [, pidText] = await waitForLine(parent, /^locked (\d+)$/)
      const pid = Number(pidText)
      expect(pid).not.toBe(parent.pid)
      const refused = await DataDir.open(path, { nodeId: 1 })
      expect(refused.ok ? 'ok' : refused.error.message).toBe(`data directory ${path} is in use by process ${pid}`)

      process.kill(pid, 'SIGKILL')
      const deadline = Date.now() + 10_000
      while ((await processState(pid)) !== 'Z1') {
        expect(Date.now(), `process ${pid} did not become a zombie`).toBeLessThan(deadline)
        await new Promise((r) => setTimeout(r, 10))
      }
      // a zombie answers kill(pid, 0) as if alive; the old pid-file lock refused here
      expect(() => process.kill(pid, 0)).not.toThrow()
      expect(await pidFile()).toBe(String(pid))

      const d = await openDir()
      expect(await pidFile()).toBe(String(process.pid))
      expect(await openGroupDb(d.groupDir(9))).toBe('ok')
      expect(await processState(pid)).toBe('Z1') // still unreaped: nothing waited for it
    } finally {
      await killHard(parent) // its zombie child goes to init, which reaps it
    }
  })

  it('a process that closes cleanly removes its pid file and frees the lock', async () => {
    const holder = spawnFixture('hold-data-dir.ts', [path, '1'])
    await waitForLine(holder, /^locked \d+$/)
    const exited = new Promise<number | null>((resolve) => holder.once('exit', (code) => resolve(code)))
    holder.stdin.end()
    expect(await exited).toBe(0)
    expect(existsSync(join(path, 'lock.pid'))).toBe(false)
    await openDir()
    expect(await pidFile()).toBe(String(process.pid))
  })

  it('reports a lock it cannot open as DATA_DIR_IO, naming the path', async () => {
    await (await openDir()).close()
    await rm(join(path, 'lock'), { recursive: true })
    await writeFile(join(path, 'lock'), 'not a directory')
    const r = await DataDir.open(path, { nodeId: 1 })
    expect(r.ok ? 'ok' : r.error.code).toBe('DATA_DIR_IO')
    expect(r.ok ? '' : r.error.message).toContain(`data directory ${path}: cannot open its lock ${join(await realpath(path), 'lock')}`)
  })
})
