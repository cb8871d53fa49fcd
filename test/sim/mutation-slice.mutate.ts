/**
 * The simulator slice of the mutation run (`npm run mutate`, vitest.mutate.config.ts):
 * 58 seeds, about 1 s on unmutated code. Small on purpose: Stryker's instrumented core
 * (a mutant switch and a coverage counter on every expression) runs the simulator about
 * 11 times slower, and every surviving mutant runs the whole slice, so its size decides
 * the run's length (raise the counts for a stronger, slower run). Not a `.test.ts` file:
 * the default suite runs the long slice (simulator.test.ts) and must not run this too.
 *
 * Each `it` is one (storage, voters, profile) cell and stops at its first violating seed
 * (sweep's default). Cells are separate tests so that Stryker's per-test coverage runs
 * only the cells that reach a mutant, and cheapest-first so that `bail` (forced by the
 * vitest runner) ends a killed mutant's run early. `mixed` keeps pre-vote, check-quorum,
 * snapshots, conf changes and transfers in play; `churn` is the Figure 8 ground. The
 * `partition` host is left out: it is slow per seed and drives the same RaftNode.
 *
 * All three hosts run the core in this thread: `worker` is a WorkerLoop driven in-process
 * by worker-host.ts (no worker_threads), so Stryker's mutant switch (a global) reaches it.
 */
import { describe, expect, it } from 'vitest'
import type { FaultProfile, StorageMode } from './options.js'
import { sweep } from './sweep.js'

interface Cell {
  readonly storage: StorageMode
  readonly nodes: 3 | 5
  readonly profile: FaultProfile
  readonly first: number
  readonly count: number
}

// Seeds start past the default slice's 1..500, so the two slices see different histories.
const CELLS: readonly Cell[] = [
  { storage: 'memory', nodes: 3, profile: 'mixed', first: 1001, count: 16 },
  { storage: 'memory', nodes: 3, profile: 'churn', first: 1001, count: 16 },
  { storage: 'memory', nodes: 5, profile: 'mixed', first: 1001, count: 8 },
  { storage: 'memory', nodes: 5, profile: 'churn', first: 1001, count: 8 },
  { storage: 'wal', nodes: 3, profile: 'mixed', first: 1001, count: 3 },
  { storage: 'wal', nodes: 5, profile: 'churn', first: 1001, count: 2 },
  { storage: 'worker', nodes: 3, profile: 'churn', first: 1001, count: 3 },
  { storage: 'worker', nodes: 5, profile: 'mixed', first: 1001, count: 2 },
]

describe('mutation slice - simulator', () => {
  for (const c of CELLS) {
    it(`${c.storage}, ${c.nodes} voters, ${c.profile}: seeds ${c.first}..${c.first + c.count - 1}`, async () => {
      const r = await sweep({ first: c.first, count: c.count, nodes: c.nodes, profile: c.profile, storage: c.storage })
      // no traced replay (describeFailure): a killed mutant would pay for a second run
      const f = r.failures[0]
      if (f) expect.fail(`seed ${f.seed}: ${f.violation?.kind}: ${f.violation?.message} (npm run sim -- --seed ${f.seed} --nodes ${c.nodes}${c.profile === 'churn' ? ' --profile churn' : ''} --storage ${c.storage})`)
      expect(r.seeds).toBe(c.count)
    })
  }
})
