/**
 * The README's "Using it from code" example, as a user would run it: taken from the
 * README, its import pointed at this checkout's source, run twice in a row in a child
 * process against a real node. Each run must exit 0 by itself (a client left open, or a
 * subscription that never ends, would keep it alive) and the second must not trip over
 * the topic the first created.
 */
import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { Client } from '../../src/client/index.js'
import { Cleanups, startTestNode } from '../support/node.js'

const root = join(import.meta.dirname, '..', '..')
const cleanups = new Cleanups()
afterAll(() => cleanups.run())

/** The first ```ts block after the heading. */
async function readmeExample(): Promise<string> {
  const readme = await readFile(join(root, 'README.md'), 'utf8')
  const from = readme.indexOf('## Using it from code')
  const open = readme.indexOf('```ts\n', from)
  const close = readme.indexOf('\n```', open + 6)
  expect(from >= 0 && open > from && close > open).toBe(true)
  return readme.slice(open + 6, close)
}

function run(file: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', file], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s))
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s))
  // a run that does not end by itself is the failure this test looks for: bounded
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
  return new Promise((resolve, reject) => {
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}

describe('README example', () => {
  it('runs twice in a row against a node and exits by itself each time', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'raftmq-readme-'))
    cleanups.add(() => rm(dir, { recursive: true, force: true }))
    const node = await startTestNode(join(dir, 'data'))
    cleanups.add(() => node.stop())
    const source = (await readmeExample())
      .replace(`from 'raftmq'`, `from ${JSON.stringify(join(root, 'src', 'index.ts'))}`)
      .replace('127.0.0.1:7070', `127.0.0.1:${node.address.port}`)
    expect(source).toContain(`127.0.0.1:${node.address.port}`)
    // beside the sources (tsx resolves from there), under a name nothing else uses
    const file = join(root, 'test', 'cli', `.readme-example-${process.pid}.ts`)
    cleanups.add(() => rm(file, { force: true }))
    await writeFile(file, source)
    for (const round of [1, 2]) {
      const r = await run(file)
      expect(r.stderr, `run ${round}`).toBe('')
      expect(r.code, `run ${round}: ${r.stderr}`).toBe(0)
      // it printed the messages it read back: hello (keyed k1), then a and b
      expect(r.stdout, `run ${round}`).toMatch(/^\d+ k1 hello\n\d+ undefined a\n\d+ undefined b\n$/)
    }
    const client = new Client({ brokers: [`127.0.0.1:${node.address.port}`] })
    cleanups.add(() => client.close())
    const page = await client.consumer().fetch({ topic: 'orders', partition: 0, offset: 0 })
    expect(page.messages.map((m) => m.value?.toString())).toEqual(['hello', 'a', 'b', 'hello', 'a', 'b'])
  }, 90_000)
})
