/**
 * Starting a real node in-process for tests: a temporary data directory, port 0, quiet
 * logs, short ticks; and a cleanup list that stops nodes and removes directories after
 * each test.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { resolveConfig } from '../../src/broker/config.js'
import type { RawConfig } from '../../src/broker/config.js'
import { startNode } from '../../src/broker/node.js'
import type { RunningNode } from '../../src/broker/node.js'

export class Cleanups {
  readonly #steps: (() => Promise<void>)[] = []

  add(step: () => Promise<void>): void {
    this.#steps.push(step)
  }

  async run(): Promise<void> {
    while (this.#steps.length > 0) await this.#steps.pop()!()
  }
}

export async function tempDir(cleanups: Cleanups, prefix = 'raftmq-test-'): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), prefix))
  cleanups.add(() => rm(d, { recursive: true, force: true }))
  return d
}

export async function startTestNode(dataDir: string, overrides: RawConfig = {}): Promise<RunningNode> {
  const cfg = resolveConfig({ dataDir, listen: '127.0.0.1:0', workers: '2', logLevel: 'warn', tickMs: '20', walSegmentMb: '4', ballastMb: '0', ...overrides })
  if (!cfg.ok) throw new Error(cfg.error.message)
  const n = await startNode(cfg.value)
  if (!n.ok) throw new Error(n.error.message)
  return n.value
}
