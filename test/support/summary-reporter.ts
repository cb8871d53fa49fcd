/**
 * A vitest reporter that ends the run with one plain line, `tests: N passed, N failed,
 * N skipped`, so a CI that reads closing lines counts the run whatever the runner.
 */
import type { Reporter, TestModule } from 'vitest/node'

export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    let passed = 0
    let failed = 0
    let skipped = 0
    for (const mod of testModules) {
      for (const t of mod.children.allTests()) {
        const state = t.result().state
        if (state === 'passed') passed++
        else if (state === 'failed') failed++
        else skipped++
      }
      // a file that failed to load has no tests but must still count as a failure
      if (mod.state() === 'failed' && [...mod.children.allTests()].length === 0) failed++
    }
    process.stdout.write(`\ntests: ${passed} passed, ${failed} failed, ${skipped} skipped\n`)
  }
}
