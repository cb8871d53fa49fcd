/**
 * bench/failover.ts — how long a partition is unwritable when its leader dies
 * (`npm run bench:failover`).
 *
 * A 3-node cluster on loopback (bench/lib/broker-process.ts spawnBrokers: each node a
 * child process, the default tick of 100 ms and election timeout of 10 ticks), one topic
 * of one partition replicated 3 ways, and one producer sending one message at a time
 * (the public client, which follows leaders: NOT_LEADER and lost connections make it
 * refresh its metadata and retry with backoff). Each trial: wait until the preferred
 * replica leads and the load flows, kill -9 the leader, and time from the kill to the
 * first acknowledged send after it (the client's view: election, discovery, retry);
 * then restart the killed node on its data and wait for leadership to go back to it
 * (the preferred replica), so every trial starts alike. Reports the distribution over
 * --trials trials (median, p90, p99, max) with the default election timeout.
 *
 * Run:
 *   npm run bench:failover
 *   npm run bench:failover -- --trials 10
 */
import { parseArgs } from 'node:util'
import type { Client } from '../src/client/index.js'
import { codeKind, compiledBroker, importCode, spawnBrokers } from './lib/broker-process.js'
import { describeEnvironment, environment, fmtMs, gitState, markdownTable, percentile, saveResults, sleep, textTable } from './lib/report.js'
import type { Column } from './lib/report.js'

const HELP = `Usage: npm run bench:failover -- [options]

Time from kill -9 of a partition's leader to the first acknowledged send after it, on a
3-node cluster (replication factor 3, default election timeout). Results:
bench/results/failover.{json,md}.

Options:
  --trials N     leader kills (default 20)
  --code KIND    compiled (default) or tsx
  --no-save      do not write bench/results/failover.{json,md}
  -h, --help     show this help
`

async function main(): Promise<void> {
  const { values: v } = parseArgs({
    options: {
      trials: { type: 'string', default: '20' },
      code: { type: 'string', default: 'compiled' },
      'no-save': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  if (v.help) {
    process.stdout.write(HELP)
    return
  }
  const trials = Number(v.trials)
  if (!Number.isSafeInteger(trials) || trials < 1) throw new Error(`--trials: expected a positive integer, got ${v.trials}`)
  const code = codeKind(v.code)
  const { Client: ClientImpl } = await importCode<typeof import('../src/client/index.js')>(code, 'src/client/index')
  const compiledMain = code === 'compiled' ? (await compiledBroker()).main : undefined
  const brokers = await spawnBrokers(3, { compiledMain })
  const client: Client = new ClientImpl({ brokers: [...brokers.addresses], requestTimeoutMs: 10_000 })
  const times: number[] = []
  let stopped = false
  try {
    await client.admin().createTopic({ name: 'failover', partitions: 1, replicationFactor: 3 })
    const producer = client.producer({ retries: 1_000, retryBackoffMs: 20, timeoutMs: 5_000 })
    let acked = 0
    let lastAck = 0
    const loop = (async () => {
      while (!stopped) {
        await producer.send({ topic: 'failover', partition: 0, value: 'x' })
        acked++
        lastAck = performance.now()
      }
    })()
    // a send that fails for good ends the bench (after the client closes, the loop's last send fails: not news)
    loop.catch((err: unknown) => {
      if (!stopped) process.stderr.write(`failover: a send failed for good: ${String(err)}\n`)
    })
    const leader = async (): Promise<{ leader: number | null; preferred: number }> => {
      const md = await client.metadata(['failover'])
      const p = md.topics[0]!.partitions[0]!
      return { leader: p.leader, preferred: p.replicas[0]! }
    }
    for (let t = 0; t < trials; t++) {
      // the preferred replica leads again and sends flow
      for (const until = performance.now() + 30_000; ; await sleep(50)) {
        const l = await leader()
        const before = acked
        await sleep(100)
        if (l.leader === l.preferred && acked > before) break
        if (performance.now() > until) {
          const warnings = brokers.warnings.filter((w) => !w.includes('reach')).slice(-10)
          throw new Error(`leadership did not go back to the preferred replica within 30 s: leader ${l.leader}, preferred ${l.preferred}, ${acked - before} sends in 100 ms\n${warnings.join('\n')}`)
        }
      }
      const { leader: victim } = await leader()
      const killedAt = performance.now()
      await brokers.kill(victim! - 1)
      const seen = acked
      while (acked === seen || lastAck <= killedAt) await sleep(1)
      const ms = lastAck - killedAt
      times.push(ms)
      process.stdout.write(`  trial ${t + 1}/${trials}: killed node ${victim}; first acknowledgement after ${fmtMs(ms)} ms\n`)
      await brokers.restart(victim! - 1)
    }
    stopped = true
    await loop
  } finally {
    stopped = true
    await client.close()
    await brokers.stop()
  }
  const sorted = Float64Array.from(times).sort()
  const row = [String(times.length), fmtMs(percentile(sorted, 50)), fmtMs(percentile(sorted, 90)), fmtMs(percentile(sorted, 99)), fmtMs(sorted[sorted.length - 1]!)]
  const columns: Column[] = [
    { title: 'trials', align: 'right' },
    { title: 'median ms', align: 'right' },
    { title: 'p90 ms', align: 'right' },
    { title: 'p99 ms', align: 'right' },
    { title: 'max ms', align: 'right' },
  ]
  process.stdout.write(`\n${textTable(columns, [row])}\n`)
  const goals = `Goals (the cluster issue; reported, not asserted): median under 1,500 ms: ${percentile(sorted, 50) < 1500 ? 'PASS' : 'FAIL'}; p99 under 3,000 ms: ${percentile(sorted, 99) < 3000 ? 'PASS' : 'FAIL'}`
  process.stdout.write(`${goals}\n`)
  if (!v['no-save']) {
    const env = environment()
    const git = gitState()
    const md = [
      '# failover bench',
      '',
      `${new Date().toISOString()}; ${describeEnvironment(env)}. Tree at ${git.commit}${git.dirty.length > 0 ? ' (with uncommitted changes)' : ''}.`,
      '',
      'A 3-node cluster on loopback, one partition replicated 3 ways, default tick (100 ms) and election timeout (10 ticks, randomised up to 2x); one producer sending one message at a time. Each trial kills the leader with SIGKILL and times the first acknowledged send after the kill (the client retries with 20 ms backoff); the killed node is restarted and leadership goes back to it before the next trial. Run with `npm run bench:failover`.',
      '',
      markdownTable(columns, [row]),
      '',
      goals,
      '',
    ].join('\n')
    for (const f of saveResults('failover', { bench: 'failover', environment: env, git, trials: times }, md)) process.stdout.write(`wrote ${f}\n`)
  }
}

await main()
