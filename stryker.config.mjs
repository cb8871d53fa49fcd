/**
 * StrykerJS mutation testing of the Raft core (`npm run mutate`; the report:
 * `npm run mutate:report`, test/sim/mutation-report.ts). Stryker 9.x: 10.x needs Node 22.
 * The tests are the Raft unit tests plus the simulator's mutation slice, chosen by
 * vitest.mutate.config.ts; a surviving mutant is a rule no test or seed there depends on.
 */
// @ts-check
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  // index.ts only re-exports. types.ts stays: besides its types it holds runtime
  // constants (message types, roles, their names) whose mutants must at least be seen
  mutate: ['src/raft/**/*.ts', '!src/raft/index.ts'],
  testRunner: 'vitest',
  vitest: {
    configFile: 'vitest.mutate.config.ts',
    // the slice reaches src/raft only through test/sim: keep `related` (the default) but
    // it must not drop the slice, and it does not, since sweep.ts imports src/raft
    related: true,
  },
  checkers: ['typescript'],
  // tsconfig.json covers src/ and workers/ (not the tests): enough to see a mutant in
  // src/raft fail to type-check, and quicker than tsconfig.test.json
  tsconfigFile: 'tsconfig.json',
  typescriptChecker: { prioritizePerformanceOverAccuracy: true },
  coverageAnalysis: 'perTest',
  // shared 2-core machine: one test process (plus the checker) at a time
  concurrency: 1,
  // a mutant's time limit is net time × factor + timeoutMS; the slice's seeds vary a lot
  // under a mutant that only slows them (more elections, more retries), so be generous
  timeoutFactor: 2.5,
  timeoutMS: 10_000,
  reporters: ['clear-text', 'progress', 'json', 'html'],
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  htmlReporter: { fileName: 'reports/mutation/mutation.html' },
  clearTextReporter: { allowColor: false, logTests: false, maxTestsToLog: 0 },
  incremental: false,
  incrementalFile: 'reports/stryker-incremental.json',
  tempDirName: '.stryker-tmp',
  cleanTempDir: true,
  ignorePatterns: ['dist', 'bench/results', 'data', '.sim-traces', 'reports'],
}
