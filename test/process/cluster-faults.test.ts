import { describe, expect, it } from 'vitest'
import { FAULT_KINDS, formatClusterReport, runClusterScenario } from './cluster-run.js'

/** Override to replay: RAFTMQ_CHAOS_SEED=<n> npx vitest run test/process/cluster-faults.test.ts (RAFTMQ_CHAOS_VERBOSE=1 prints the run). */
const SEED = Number(process.env.RAFTMQ_CHAOS_SEED ?? 20_260_808)

describe('process - a 3-node cluster under faults', () => {
  // a short fixed slice of `npm run chaos`: each fault kind once, each capped at 3 s
  it(`acknowledged messages survive a leader kill, a SIGSTOP, a cut-off node (drop, delay, one-way) and a rolling restart, once each and at their offsets, with identical replicas (seed ${SEED})`, async () => {
    const lines: string[] = []
    const report = await runClusterScenario({ seed: SEED, faults: FAULT_KINDS, faultMsMax: 3_000, progress: (l) => lines.push(l) })
    const summary = `${lines.join('\n')}\n${formatClusterReport(report)}`
    if (process.env.RAFTMQ_CHAOS_VERBOSE) console.log(summary)
    // the message carries the seed, the replay command and every problem
    expect(report.problems, summary).toEqual([])
    expect({ lost: report.lost, duplicated: report.duplicated, offsetMismatches: report.offsetMismatches, outOfOrder: report.outOfOrder, replicaMismatches: report.replicaMismatches, replicasBehind: report.replicasBehind }).toEqual({
      lost: 0,
      duplicated: 0,
      offsetMismatches: 0,
      outOfOrder: 0,
      replicaMismatches: 0,
      replicasBehind: 0,
    })
    for (const k of FAULT_KINDS) expect(report.faults[k], k).toBeGreaterThanOrEqual(1)
    expect(report.acked['idem-send']).toBeGreaterThan(0)
    expect(report.acked['plain-batch']).toBeGreaterThan(0)
  }, 150_000)
})
