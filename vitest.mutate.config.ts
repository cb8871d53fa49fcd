/**
 * The vitest config of the mutation run (stryker.config.mjs): the Raft unit tests plus
 * the simulator's mutation slice (test/sim/mutation-slice.mutate.ts), which the default
 * config (`test/**\/*.test.ts`) does not pick up. `npx vitest run -c vitest.mutate.config.ts`
 * runs the same set on unmutated code (about 10 s).
 */
import { BaseSequencer } from 'vitest/node'
import type { TestSpecification } from 'vitest/node'
import { defineConfig } from 'vitest/config'

const SLICE = 'test/sim/mutation-slice.mutate.ts'

/**
 * The unit tests first, the slice last. Vitest's own order runs long files first, and the
 * Stryker runner forces `bail`: a mutant a unit test kills in a second would otherwise
 * wait for the slice.
 */
class SliceLast extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const isSlice = (f: TestSpecification): boolean => f.moduleId.endsWith(SLICE)
    return [...files].sort((a, b) => Number(isSlice(a)) - Number(isSlice(b)) || a.moduleId.localeCompare(b.moduleId))
  }
}

export default defineConfig({
  test: {
    include: ['test/raft/**/*.test.ts', SLICE],
    // a mutant may slow the slice many times over; Stryker's own timeout decides first
    testTimeout: 120_000,
    hookTimeout: 60_000,
    sequence: { sequencer: SliceLast },
  },
})
