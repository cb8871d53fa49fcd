/**
 * `raftmq data quarantine` end to end: a real node (`raftmq start` as a child process)
 * quarantines a group directory no topic owns and logs how to remove it; `list` works
 * beside it, `purge` is refused until it stops, then the logged command removes it.
 */
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { DataDir } from '../../src/storage/index.js'

const root = join(import.meta.dirname, '..', '..')
let base: string
let path: string

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'raftmq-cli-data-'))
})

afterAll(async () => {
  if (base) await rm(base, { recursive: true, force: true })
})

let n = 0
beforeEach(() => {
  path = join(base, `data-${++n}`)
})

interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

function start(args: string[]): { readonly child: ReturnType<typeof spawn>; readonly done: Promise<Run>; readonly stdout: () => string } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: root,
    env: { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('RAFTMQ_'))), NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (stdout += s))
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s))
  const done = new Promise<Run>((resolve, reject) => {
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
  return { child, done, stdout: () => stdout }
}

const raftmq = (args: string[]): Promise<Run> => start(args).done

async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = probe()
    if (v !== undefined) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

/** A data directory of node 1 with group directories `ids` that no topic owns. */
async function dataDirWith(ids: readonly number[]): Promise<void> {
  const d = await DataDir.open(path, { nodeId: 1 })
  if (!d.ok) throw new Error(d.error.message)
  for (const id of ids) {
    await mkdir(d.value.groupDir(id), { recursive: true })
    await writeFile(join(d.value.groupDir(id), 'CURRENT'), 'z'.repeat(2048))
  }
  await d.value.close()
}

describe('cli - data quarantine', () => {
  it('a node quarantines a group no topic owns and logs the command; list works beside it, purge waits for it to stop', async () => {
    await dataDirWith([42])
    const node = start(['start', '--data-dir', path, '--listen', '127.0.0.1:0', '--workers', '0', '--log-level', 'info'])
    try {
      const logs = (): Record<string, unknown>[] =>
        node
          .stdout()
          .split('\n')
          .filter((l) => l.startsWith('{'))
          .map((l) => JSON.parse(l) as Record<string, unknown>)
      await until('the node to start', () => logs().find((l) => l.msg === 'raftmq node started'))
      const warning = logs().find((l) => l.group === '42')
      expect(warning).toMatchObject({ level: 40, msg: 'moved the data of a group no topic owns to quarantine' })
      const moved = String(warning!.quarantine)
      const name = moved.split('/').pop()!
      expect(name).toMatch(/^42\.\d{4}-\d{2}-\d{2}T\d{6}\.\d{3}Z$/)
      expect(warning!.remove).toBe(`raftmq data quarantine purge ${name} --data-dir ${path}`)
      expect(existsSync(join(path, 'groups', '42'))).toBe(false)
      expect(existsSync(join(moved, 'CURRENT'))).toBe(true)

      const list = await raftmq(['data', 'quarantine', 'list', '--data-dir', path])
      expect(list).toMatchObject({ code: 0, stderr: '' })
      const lines = list.stdout.split('\n')
      expect(lines[0]).toMatch(/^NAME\s+GROUP\s+QUARANTINED\s+SIZE$/)
      expect(lines[1]!.split(/\s{2,}/)).toEqual([name, '42', expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/), '2.0 KiB'])
      expect(list.stdout).toContain(`remove with: raftmq data quarantine purge NAME... --data-dir ${path} (or --all), while no node runs on it`)

      const refused = await raftmq(['data', 'quarantine', 'purge', '--all', '--data-dir', path])
      expect(refused).toEqual({ code: 1, stdout: '', stderr: `raftmq: DATA_DIR_IN_USE: data directory ${path} is in use by process ${node.child.pid}\n` })
      expect(existsSync(moved)).toBe(true)
    } finally {
      node.child.kill('SIGTERM')
      expect((await node.done).code).toBe(0)
    }

    const logged = [...(node.stdout().match(/"remove":"raftmq ([^"]+)"/)?.[1]?.split(' ') ?? [])]
    const purged = await raftmq(logged)
    expect(purged).toEqual({ code: 0, stdout: `purged ${logged[3]} (2.0 KiB)\n`, stderr: '' })
    expect(await raftmq(['data', 'quarantine', 'list', '-d', path])).toEqual({ code: 0, stdout: `nothing in quarantine in ${path}\n`, stderr: '' })
  })

  it('purges named entries or all; unknown names, missing directories and bad usage fail with their codes', async () => {
    await dataDirWith([1, 2, 3])
    const d = await DataDir.open(path, { nodeId: 1 })
    if (!d.ok) throw new Error(d.error.message)
    const names: string[] = []
    for (const id of [1, 2, 3]) {
      const q = await d.value.quarantineGroup(id)
      if (!q.ok) throw new Error(q.error.message)
      names.push(q.value.split('/').pop()!)
    }
    await d.value.close()

    const [unknown, neither, both, missing] = await Promise.all([
      raftmq(['data', 'quarantine', 'purge', names[0]!, 'nope', '-d', path]),
      raftmq(['data', 'quarantine', 'purge', '-d', path]),
      raftmq(['data', 'quarantine', 'purge', '--all', names[0]!, '-d', path]),
      raftmq(['data', 'quarantine', 'list', '-d', join(base, 'absent')]),
    ])
    expect(unknown).toEqual({ code: 1, stdout: '', stderr: `raftmq: DATA_DIR_NOT_FOUND: data directory ${path} has nothing in quarantine named "nope"\n` })
    expect(neither.code).toBe(2)
    expect(neither.stderr).toMatch(/^raftmq: name the entries to purge, or give --all\n/)
    expect(neither.stderr).toContain('usage: raftmq data quarantine purge')
    expect(both.code).toBe(2)
    expect(both.stderr).toMatch(/^raftmq: give either --all or names, not both\n/)
    expect(missing).toEqual({ code: 1, stdout: '', stderr: `raftmq: DATA_DIR_NOT_FOUND: there is no data directory ${join(base, 'absent')}\n` })

    const two = await raftmq(['data', 'quarantine', 'purge', names[0]!, names[2]!, '-d', path])
    expect(two).toEqual({ code: 0, stdout: `purged ${names[0]} (2.0 KiB)\npurged ${names[2]} (2.0 KiB)\n`, stderr: '' })
    const list = await raftmq(['data', 'quarantine', 'list', '-d', path])
    expect(list.stdout.split('\n')[1]).toMatch(new RegExp(`^${names[1]!.replace(/\./g, '\\.')}\\s+2\\s`))
    expect(await raftmq(['data', 'quarantine', 'purge', '--all', '-d', path])).toEqual({ code: 0, stdout: `purged ${names[1]} (2.0 KiB)\n`, stderr: '' })
    expect(await raftmq(['data', 'quarantine', 'purge', '--all', '-d', path])).toEqual({ code: 0, stdout: `nothing in quarantine in ${path}\n`, stderr: '' })
    expect(existsSync(join(path, 'lock.pid'))).toBe(false) // purge let go of the lock
  })

  it('has help for the group and both commands', async () => {
    const [data, list, purge] = await Promise.all([
      raftmq(['data', 'quarantine', '--help']),
      raftmq(['data', 'quarantine', 'list', '--help']),
      raftmq(['data', 'quarantine', 'purge', '--help']),
    ])
    expect(data.code).toBe(0)
    expect(data.stdout).toContain('it moves the directory to <data-dir>/quarantine/<group>.<time>')
    expect(list.code).toBe(0)
    expect(list.stdout).toMatch(/-d, --data-dir <dir>\s+the data directory \(default: "\.\/data", env:\s+RAFTMQ_DATA_DIR\)/)
    expect(list.stdout).toContain('safe while a node runs')
    expect(purge.code).toBe(0)
    expect(purge.stdout).toContain('Usage: raftmq data quarantine purge [options] [names...]')
    expect(purge.stdout).toMatch(/refused while a node holds the\s+data directory/)
    expect(purge.stdout).toContain('$ raftmq data quarantine purge --all --data-dir /var/lib/raftmq')
  })
})
