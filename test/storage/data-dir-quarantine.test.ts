import { existsSync } from 'node:fs'
import { mkdir, readFile, readdir, realpath, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { AssertionError } from '../../src/base/index.js'
import { DataDir } from '../../src/storage/index.js'
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

function unwrap<T>(r: { ok: true; value: T } | { ok: false; error: { code: string; message: string } }): T {
  if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message}`)
  return r.value
}

/** A group directory with `bytes` bytes of files in it, one level down as well. */
async function fakeGroup(d: DataDir, id: number | string, bytes: number): Promise<void> {
  await mkdir(join(d.groupDir(id), 'sub'), { recursive: true })
  await writeFile(join(d.groupDir(id), 'CURRENT'), 'x'.repeat(bytes - 10))
  await writeFile(join(d.groupDir(id), 'sub', 'tail'), 'y'.repeat(10))
}

const STAMP = /^\d{4}-\d{2}-\d{2}T\d{6}\.\d{3}Z$/

describe('storage - data directory quarantine', () => {
  it('moves a group to quarantine/<group>.<time without colons>, keeping every byte, and lists it', async () => {
    const d = await openDir()
    await fakeGroup(d, 7, 1000)
    await fakeGroup(d, 'orders.0', 300)
    const before = Date.now()
    const moved = unwrap(await d.quarantineGroup(7))
    const real = await realpath(path)
    expect(moved.startsWith(join(real, 'quarantine', '7.'))).toBe(true)
    expect(moved.slice(join(real, 'quarantine', '7.').length)).toMatch(STAMP)
    expect(existsSync(d.groupDir(7))).toBe(false)
    expect(await d.groupIds()).toEqual(['orders.0'])
    expect(await readFile(join(moved, 'sub', 'tail'), 'utf8')).toBe('y'.repeat(10))

    const dotted = unwrap(await d.quarantineGroup('orders.0'))
    const listed = unwrap(await d.listQuarantine())
    expect(listed.map((q) => ({ group: q.group, path: q.path, bytes: q.bytes }))).toEqual([
      { group: '7', path: moved, bytes: 1000 },
      { group: 'orders.0', path: dotted, bytes: 300 },
    ])
    for (const q of listed) {
      expect(q.name).toBe(q.path.slice(join(real, 'quarantine').length + 1))
      expect(q.quarantinedAt.getTime()).toBeGreaterThanOrEqual(before - 1)
      expect(q.quarantinedAt.getTime()).toBeLessThanOrEqual(Date.now())
    }
    expect(unwrap(await DataDir.listQuarantineAt(path))).toEqual(listed)
  })

  it('quarantines the same group twice without overwriting, and refuses a group that is not there', async () => {
    const d = await openDir()
    const paths: string[] = []
    for (let k = 0; k < 3; k++) {
      await fakeGroup(d, 3, 100 + k)
      paths.push(unwrap(await d.quarantineGroup(3)))
    }
    expect(new Set(paths).size).toBe(3)
    expect(unwrap(await d.listQuarantine()).map((q) => q.bytes).sort()).toEqual([100, 101, 102])
    const none = await d.quarantineGroup(4)
    expect(none.ok ? 'ok' : none.error).toEqual({ code: 'DATA_DIR_NOT_FOUND', message: `data directory ${path} has no group 4 to quarantine (${d.groupDir(4)})` })
    await expect(d.quarantineGroup('../meta.json')).rejects.toThrow(AssertionError)
  })

  it('purges by name or all, refusing unknown names before deleting anything', async () => {
    const d = await openDir()
    for (const id of [1, 2, 3]) await fakeGroup(d, id, 50)
    const names = []
    for (const id of [1, 2, 3]) names.push(unwrap(await d.quarantineGroup(id)).split('/').pop()!)
    await mkdir(join(path, 'quarantine', 'put-here-by-hand'))
    expect(unwrap(await d.listQuarantine()).find((q) => q.name === 'put-here-by-hand')).toMatchObject({ group: null, bytes: 0 })

    const unknown = await d.purgeQuarantine([names[0]!, 'nope', '../groups'])
    expect(unknown.ok ? 'ok' : unknown.error).toEqual({ code: 'DATA_DIR_NOT_FOUND', message: `data directory ${path} has nothing in quarantine named "nope", "../groups"` })
    expect((await readdir(join(path, 'quarantine'))).length).toBe(4)

    const one = unwrap(await d.purgeQuarantine([names[1]!, names[1]!]))
    expect(one.map((q) => [q.name, q.bytes])).toEqual([[names[1], 50]])
    expect(unwrap(await d.listQuarantine()).map((q) => q.name).sort()).toEqual([names[0], names[2], 'put-here-by-hand'].sort())

    const rest = unwrap(await d.purgeQuarantine('all'))
    expect(rest.length).toBe(3)
    expect(await readdir(join(path, 'quarantine'))).toEqual([])
    expect(unwrap(await d.purgeQuarantine('all'))).toEqual([])
    expect(existsSync(join(path, 'groups'))).toBe(true)
  })

  it('an empty or missing quarantine lists as nothing; a path that is no data directory is DATA_DIR_NOT_FOUND', async () => {
    const d = await openDir()
    expect(unwrap(await d.listQuarantine())).toEqual([])
    const missing = await DataDir.listQuarantineAt(join(base, 'elsewhere'))
    expect(missing.ok ? 'ok' : missing.error.code).toBe('DATA_DIR_NOT_FOUND')
    await mkdir(join(base, 'plain'))
    const plain = await DataDir.listQuarantineAt(join(base, 'plain'))
    expect(plain.ok ? 'ok' : plain.error.message).toBe(`${join(base, 'plain')} is not a raftmq data directory: it has no meta.json`)
  })

  it('lists without the lock while another process holds the directory; purging needs the lock', async () => {
    const d = await openDir()
    await fakeGroup(d, 5, 64)
    unwrap(await d.quarantineGroup(5))
    await d.close()
    const holder = spawnFixture('hold-data-dir.ts', [path, '1'])
    try {
      const [, pid] = await waitForLine(holder, /^locked (\d+)$/)
      expect(unwrap(await DataDir.listQuarantineAt(path)).map((q) => q.group)).toEqual(['5'])
      const tool = await DataDir.openExisting(path)
      expect(tool.ok ? 'ok' : tool.error).toEqual({ code: 'DATA_DIR_IN_USE', message: `data directory ${path} is in use by process ${pid}` })
    } finally {
      await killHard(holder)
    }
    const tool = unwrap(await DataDir.openExisting(path))
    toClose.push(tool)
    expect((await tool.purgeQuarantine('all')).ok).toBe(true)
  })
})
