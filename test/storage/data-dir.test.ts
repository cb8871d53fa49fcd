import { existsSync } from 'node:fs'
import { mkdir, readFile, realpath, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { AssertionError } from '../../src/base/index.js'
import { DataDir, LevelRaftStorage } from '../../src/storage/index.js'
import { killHard, spawnFixture, tempDir, waitForLine } from './helpers.js'

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

describe('storage - data directory', () => {
  it('creates meta.json, groups/ and a lock file holding our pid; close removes the lock', async () => {
    const d = await openDir(4)
    const meta = JSON.parse(await readFile(join(path, 'meta.json'), 'utf8'))
    expect(meta).toMatchObject({ formatVersion: 1, nodeId: 4 })
    expect(Number.isNaN(Date.parse(meta.createdAt))).toBe(false)
    expect(d.meta).toEqual(meta)
    expect((await readFile(join(path, 'raftmq.lock'), 'utf8')).trim()).toBe(String(process.pid))
    expect(existsSync(join(path, 'groups'))).toBe(true)
    await d.close()
    expect(existsSync(join(path, 'raftmq.lock'))).toBe(false)
    const again = await openDir(4)
    expect(again.meta.createdAt).toBe(meta.createdAt)
  })

  it('refuses another node id, another format, a damaged meta.json, or groups without one', async () => {
    const d = await openDir(1)
    await d.close()
    const wrong = await DataDir.open(path, { nodeId: 2 })
    expect(wrong.ok ? 'ok' : wrong.error).toEqual({ code: 'DATA_DIR_WRONG_NODE', message: `data directory ${path} belongs to node 1, not node 2` })
    expect(existsSync(join(path, 'raftmq.lock'))).toBe(false) // a refused open leaves no lock behind

    await writeFile(join(path, 'meta.json'), JSON.stringify({ formatVersion: 2, nodeId: 1, createdAt: 'x' }))
    const newer = await DataDir.open(path, { nodeId: 1 })
    expect(newer.ok ? 'ok' : newer.error.code).toBe('DATA_DIR_INCOMPATIBLE')

    await writeFile(join(path, 'meta.json'), '{"formatVersion": 1,')
    const garbled = await DataDir.open(path, { nodeId: 1 })
    expect(garbled.ok ? 'ok' : garbled.error.code).toBe('DATA_DIR_INVALID')

    await mkdir(join(path, 'groups', '3'), { recursive: true })
    await writeFile(join(path, 'meta.json'), '{}')
    const lacking = await DataDir.open(path, { nodeId: 1 })
    expect(lacking.ok ? 'ok' : lacking.error.code).toBe('DATA_DIR_INVALID')
  })

  it('refuses a second opener in the same process', async () => {
    await openDir()
    const second = await DataDir.open(path, { nodeId: 1 })
    expect(second.ok ? 'ok' : second.error.code).toBe('DATA_DIR_IN_USE')
    expect(second.ok ? '' : second.error.message).toContain(`data directory ${path} is in use by this process`)
  })

  it('lays out groups by id, lists and removes them, and rejects ids that are not safe names', async () => {
    const d = await openDir()
    expect(d.groupDir(7)).toBe(join(await realpath(path), 'groups', '7'))
    const g = await d.openGroup(7, { voters: [1] })
    expect(g.ok).toBe(true)
    if (g.ok) await g.value.close()
    const c = await d.openGroup('controller', { voters: [1] })
    if (c.ok) await c.value.close()
    expect(await d.groupIds()).toEqual(['7', 'controller'])
    await d.removeGroup(7)
    expect(await d.groupIds()).toEqual(['controller'])
    expect(() => d.groupDir('../etc')).toThrow(AssertionError)
    expect(() => d.groupDir(-1)).toThrow(AssertionError)
    expect(() => d.groupDir(1.5)).toThrow(AssertionError)
  })

  it('another live process is refused with its pid; once it is killed, its stale lock is taken over', async () => {
    const holder = spawnFixture('hold-data-dir.ts', [path, '1', '9'])
    try {
      const [, pid] = await waitForLine(holder, /^locked (\d+)$/)
      expect(Number(pid)).toBe(holder.pid)
      const refused = await DataDir.open(path, { nodeId: 1 })
      expect(refused.ok ? 'ok' : refused.error).toEqual({ code: 'DATA_DIR_IN_USE', message: `data directory ${path} is in use by process ${pid}` })
      // the group's own LevelDB LOCK refuses too, whoever bypasses the data directory
      const group = await LevelRaftStorage.open(join(path, 'groups', '9'), { voters: [1] })
      expect(group.ok ? 'ok' : group.error.code).toBe('STORE_IN_USE')
      expect(group.ok ? '' : group.error.message).toMatch(/is in use: its LevelDB LOCK is held by another process/)
    } finally {
      await killHard(holder)
    }
    expect((await readFile(join(path, 'raftmq.lock'), 'utf8')).trim()).toBe(String(holder.pid)) // left behind by kill -9
    const d = await openDir()
    expect((await readFile(join(path, 'raftmq.lock'), 'utf8')).trim()).toBe(String(process.pid))
    const g = await d.openGroup(9, { voters: [1] })
    expect(g.ok).toBe(true)
    if (g.ok) await g.value.close()
  })

  it('a process that closes cleanly removes its lock; a garbled lock file counts as stale', async () => {
    const holder = spawnFixture('hold-data-dir.ts', [path, '1'])
    await waitForLine(holder, /^locked \d+$/)
    const exited = new Promise<number | null>((resolve) => holder.once('exit', (code) => resolve(code)))
    holder.stdin.end()
    expect(await exited).toBe(0)
    expect(existsSync(join(path, 'raftmq.lock'))).toBe(false)
    await writeFile(join(path, 'raftmq.lock'), 'not a pid')
    await openDir()
    expect((await readFile(join(path, 'raftmq.lock'), 'utf8')).trim()).toBe(String(process.pid))
  })
})
