/**
 * The broker crash scenario (issue 3, item 11), shared by test/process/crash.test.ts and
 * the longer soak (`npm run soak:crash -- --seed S --cycles N`).
 *
 * One broker runs as a child process (broker-process.ts). Four lanes produce to a topic
 * of a few partitions, all the time, from this process:
 *   idem-send    an idempotent producer's `send`, a few concurrent messages per round
 *   idem-batch   the same producer's `sendBatch`, 1–40 messages over the partitions (some atomic)
 *   plain-send   a plain producer's `send` (its own client)
 *   plain-batch  the plain producer's `sendBatch`
 * Every message carries a unique id in its value, and the ledger records each one's
 * outcome: acknowledged (partition, offset, duplicate flag), failed (error code), and in
 * which life of the broker it was sent and acknowledged.
 *
 * A seeded Prng (src/base) decides the shape of the run: each cycle kills the broker with
 * SIGKILL after a random number of acknowledgements or a random delay, leaves it down a
 * random while, and restarts it on the same data directory and port. One restart in five
 * is itself killed somewhere in its recovery first, and at least one life outlasts the
 * partitions' periodic state save (5 s), so recovery runs both from the log alone and
 * from a saved state plus the log after it. Requests in flight fail with
 * CONNECTION_CLOSED; the idempotent producer retries them (many retries, short backoff)
 * over a new connection to the restarted broker, so its retries must be answered as
 * duplicates (original offsets) or stored once. The plain producer does not retry
 * (`retries: 0`): a plain retry after an ambiguous failure may legitimately store a
 * message twice (at-least-once), and without retries "no value appears twice" holds for
 * every message. Timing is real, so a seed fixes the schedule (when to kill, the sizes,
 * the partitions), not the exact interleaving.
 *
 * The checks (Jepsen's lost write, duplicate, inconsistent offsets):
 *   - after every restart, everything acknowledged before the kill is readable at its
 *     offset (within a bound: the restarted leader first re-commits its log);
 *   - at the end, each partition read from 0: offsets dense from 0 up to the high
 *     watermark, every value one we sent, no id twice, every acknowledged message at the
 *     offset it was acknowledged with, acknowledged messages of a lane in the order the
 *     lane sent them (per partition), duplicates answered only to the idempotent producer;
 *   - the idempotent producer saw retries across a crash (acknowledged in a later life
 *     than sent), none of those messages is stored twice, and none of its messages failed
 *     (it retries through every crash);
 *   - after the last restart every lane is acknowledged again (no hang), the broker logged
 *     no error, and a final SIGTERM shuts it down cleanly (exit code 0).
 *
 * What this cannot see: kill -9 loses no write the kernel already has, so a missing
 * fsync goes unnoticed here (test/storage covers the store's sync discipline).
 *
 * The lanes, the ledger and the final check live in ./lanes (shared with cluster-run.ts).
 *
 * Imports the client, base, ./lanes and ./broker-process.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Prng } from '../../src/base/index.js'
import { Client } from '../../src/client/index.js'
import type { Producer } from '../../src/client/index.js'
import { BrokerProcess, freePort } from './broker-process.js'
import { LANES, Lanes, checkLedger, failuresByCode, readPartitionLog } from './lanes.js'
import type { Lane, PartitionLog, Sent } from './lanes.js'

export { checkLedger, readPartitionLog }
export type { Lane, PartitionLog, Sent }

export interface CrashRunOptions {
  readonly seed: number
  /** Kill/restart cycles. */
  readonly cycles: number
  readonly partitions?: number
  /** Progress lines (one per cycle). */
  readonly progress?: (line: string) => void
  /** Keep the data directory and broker log even when the run passes. */
  readonly keep?: boolean
}

export interface CrashReport {
  readonly seed: number
  readonly cycles: number
  readonly durationMs: number
  readonly sent: number
  readonly acked: { readonly idempotent: number; readonly plain: number }
  /** Failed messages by producer and error code. */
  readonly failed: Readonly<Record<string, number>>
  /** Sent, not acknowledged, yet stored (once): the ambiguous outcome of a request in flight at a kill. */
  readonly storedUnacked: number
  /** Idempotent messages acknowledged in a later broker life than they were sent in. */
  readonly idempotentAcrossCrash: number
  /** Acknowledgements the broker answered as duplicates (a retry of something already stored). */
  readonly duplicateAcks: number
  readonly messagesInLog: number
  /** Milliseconds from spawn to "raftmq node started", per life. */
  readonly startMs: readonly number[]
  /** The longest wait, after a restart, until everything acknowledged before the kill was readable. */
  readonly readBackMsMax: number
  /** Restarts after which the first look at a partition's high watermark trailed what was acknowledged. */
  readonly trailingReads: number
  /** Restarts killed before they were ready (recovery interrupted). */
  readonly midStartKills: number
  readonly workDir: string
}

/** A failed run: the message names the seed, the violations and where the broker's log is. */
export class CrashRunFailure extends Error {
  override name = 'CrashRunFailure'
  readonly seed: number
  readonly workDir: string

  constructor(opts: CrashRunOptions, workDir: string, problems: readonly string[], brokerTail: string) {
    const seed = opts.seed
    const shown = problems.slice(0, 25)
    const replay = `npm run soak:crash -- --seed ${seed} --cycles ${opts.cycles} --partitions ${opts.partitions ?? 2}`
    super(
      [
        `crash run failed with seed ${seed} (replay: ${replay}; in the test: RAFTMQ_CRASH_SEED=${seed} npx vitest run test/process)`,
        ...shown.map((p) => `  - ${p}`),
        ...(problems.length > shown.length ? [`  ... and ${problems.length - shown.length} more`] : []),
        `data dir and broker log kept in ${workDir}`,
        'last broker output:',
        brokerTail,
      ].join('\n'),
    )
    this.seed = seed
    this.workDir = workDir
  }
}

const TOPIC = 'crash'
/** Per-phase bounds; past them the run counts as hung. */
const ACK_WAIT_MS = 15_000
const DRAIN_WAIT_MS = 30_000
const READ_BACK_WAIT_MS = 10_000

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

export async function runCrashScenario(opts: CrashRunOptions): Promise<CrashReport> {
  const t0 = performance.now()
  const seed = opts.seed
  const partitions = opts.partitions ?? 2
  const progress = opts.progress ?? (() => {})
  const prng = new Prng(seed)
  const schedule = prng.fork()

  const workDir = await mkdtemp(join(tmpdir(), 'raftmq-crash-'))
  const broker = new BrokerProcess({
    dataDir: join(workDir, 'data'),
    port: await freePort(),
    logFile: join(workDir, 'broker.log'),
    // 1 MiB segments: kills land in segment rolls, checkpoints and retirements too
    args: ['--workers', '2', '--tick-ms', '20', '--shutdown-timeout-ms', '5000', '--wal-segment-mb', '1'],
  })
  const clientOpts = { brokers: [broker.address], connectTimeoutMs: 2_000, requestTimeoutMs: 15_000 }
  const idemClient = new Client({ ...clientOpts, clientId: 'crash-idempotent' })
  const plainClient = new Client({ ...clientOpts, clientId: 'crash-plain' })
  const readClient = new Client({ ...clientOpts, clientId: 'crash-reader' })
  const producers: Record<'idem' | 'plain', Producer> = {
    idem: idemClient.producer({ idempotent: true, retries: 1_000, retryBackoffMs: 20, timeoutMs: 10_000 }),
    plain: plainClient.producer({ retries: 0, timeoutMs: 10_000 }),
  }

  const problems: string[] = []
  const startMs: number[] = []
  let kills = 0
  /** Restarts killed before they were ready. */
  let midStartKills = 0
  /** Acknowledgements since the last restart, per lane and in all. */
  let acksThisLife = 0
  const laneAcksThisLife = new Map<Lane, number>(LANES.map((l) => [l, 0]))
  let ackWaiter: { readonly n: number; readonly resolve: () => void } | null = null
  // the epoch of a message is the number of kills before it: its life is epoch + 1
  const lanes = new Lanes({
    topic: TOPIC,
    partitions,
    producers,
    prng,
    epoch: () => kills,
    problems,
    onAck: (m) => {
      acksThisLife++
      laneAcksThisLife.set(m.lane, laneAcksThisLife.get(m.lane)! + 1)
      if (ackWaiter && acksThisLife >= ackWaiter.n) {
        ackWaiter.resolve()
        ackWaiter = null
      }
    },
  })
  const ledger = lanes.ledger

  const killBroker = async (): Promise<void> => {
    await broker.kill()
    kills++
    acksThisLife = 0
    for (const l of LANES) laneAcksThisLife.set(l, 0)
  }

  /** Resolves after `n` more acknowledgements in this life (or rejects after ACK_WAIT_MS). */
  const acks = (n: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${n} acknowledgements within ${ACK_WAIT_MS} ms (got ${acksThisLife}): hung?`)), ACK_WAIT_MS)
      ackWaiter = {
        n,
        resolve: () => {
          clearTimeout(timer)
          resolve()
        },
      }
    })

  const readFrom = (partition: number, from: number): Promise<PartitionLog> => readPartitionLog(readClient, TOPIC, partition, from)

  /**
   * After a restart: what the lives since kill `since` acknowledged is readable at its offset. The
   * high watermark may trail for a moment while the restarted leader re-applies its log;
   * it must catch up within READ_BACK_WAIT_MS (a first read that trails is counted).
   */
  let readBackMsMax = 0
  let trailingReads = 0
  const checkReadBack = async (since: number): Promise<void> => {
    const t = performance.now()
    const admin = readClient.admin()
    const want = ledger.filter((m) => m.state === 'acked' && m.ackEpoch >= since && m.ackEpoch < kills)
    for (let p = 0; p < partitions; p++) {
      const mine = want.filter((m) => m.partition === p)
      if (mine.length === 0) continue
      const need = mine.reduce((a, m) => Math.max(a, m.offset + 1), 0)
      const until = Date.now() + READ_BACK_WAIT_MS
      let highWatermark = await admin.listOffset(TOPIC, p, 'latest')
      if (highWatermark < need) trailingReads++
      while (highWatermark < need && Date.now() < until) {
        await sleep(20)
        highWatermark = await admin.listOffset(TOPIC, p, 'latest')
      }
      if (highWatermark < need) {
        problems.push(`after restart ${kills}: partition ${p} has high watermark ${highWatermark}, but offset ${need - 1} was acknowledged before the kill`)
        continue
      }
      const from = mine.reduce((a, m) => Math.min(a, m.offset), need)
      const log = await readFrom(p, from)
      for (const m of mine) {
        const i = m.offset - from
        if (log.offsets[i] !== m.offset || log.values[i] !== m.value) {
          problems.push(`after restart ${kills}: ${m.id} acknowledged at ${p}/${m.offset}, which now holds ${(log.values[i] ?? '<nothing>').split('|')[0]}`)
        }
      }
    }
    readBackMsMax = Math.max(readBackMsMax, performance.now() - t)
  }

  let report: CrashReport | null = null
  try {
    startMs.push(await broker.start())
    await readClient.admin().createTopic({ name: TOPIC, partitions })
    lanes.start()
    await acks(prng.range(20, 200))

    // one life (and a tenth of the others) lasts past the partition's state save (every 5 s),
    // so restarts also recover from a saved state plus the log after it, not only from the log
    const longLife = schedule.range(1, Math.max(1, opts.cycles))
    for (let cycle = 1; cycle <= opts.cycles; cycle++) {
      // kill after a random number of acknowledgements, or after a random delay
      const long = cycle === longLife || schedule.chance(0.1)
      const byAcks = !long && schedule.chance(0.5)
      const n = schedule.range(1, 300)
      const delayMs = long ? schedule.range(5_500, 7_000) : schedule.range(20, 800)
      if (byAcks) await acks(acksThisLife + n)
      else await sleep(delayMs)
      const pendingAtKill = ledger.filter((m) => m.state === 'pending').length
      const lifeKilled = kills
      await killBroker()
      await sleep(schedule.range(0, 400))
      let interrupted = ''
      if (schedule.chance(0.2)) {
        // now and then the restart is killed too, somewhere in its recovery
        const killMs = schedule.range(100, 2_500)
        const ready = await Promise.race([broker.start().then(() => true, () => false), sleep(killMs).then(() => false)])
        await killBroker()
        if (!ready) midStartKills++
        interrupted = ready ? `; its restart killed ${killMs} ms after it was ready` : `; its restart killed ${killMs} ms in, before it was ready`
      }
      startMs.push(await broker.start())
      await checkReadBack(lifeKilled)
      progress(
        `cycle ${cycle}/${opts.cycles}: killed after ${byAcks ? `${n} acks` : `${delayMs} ms`} with ${pendingAtKill} messages pending; restarted in ${Math.round(startMs[startMs.length - 1]!)} ms${interrupted}; ${ledger.filter((m) => m.state === 'acked').length} acknowledged so far`,
      )
      if (problems.length > 0) break
    }

    // liveness: after the last restart every lane is acknowledged again
    const until = Date.now() + ACK_WAIT_MS
    while (LANES.some((l) => laneAcksThisLife.get(l)! === 0) && Date.now() < until) await sleep(20)
    for (const l of LANES) if (laneAcksThisLife.get(l)! === 0) problems.push(`lane ${l} got no acknowledgement within ${ACK_WAIT_MS} ms of the last restart`)
    const drained = await lanes.stop(DRAIN_WAIT_MS)
    if (!drained) problems.push(`the producers did not finish within ${DRAIN_WAIT_MS} ms (still pending: ${lanes.pending().slice(0, 5).map((m) => m.id).join(', ')})`)

    // the whole log, against the ledger
    const logs: PartitionLog[] = []
    for (let p = 0; p < partitions; p++) logs.push(await readFrom(p, 0))
    const verdict = checkLedger(ledger, logs)
    problems.push(...verdict.problems)
    const acrossCrash = ledger.filter((m) => m.idempotent && m.state === 'acked' && m.ackEpoch > m.sentEpoch)
    if (opts.cycles > 0 && acrossCrash.length === 0) problems.push('no idempotent message was acknowledged across a crash: the run did not exercise retries')
    for (const e of broker.errors) problems.push(`the broker logged an error: ${JSON.stringify(e)}`)
    const code = await broker.stop()
    if (code !== 0) problems.push(`a clean shutdown (SIGTERM) exited with code ${code}`)

    report = {
      seed,
      cycles: opts.cycles,
      durationMs: Math.round(performance.now() - t0),
      sent: ledger.length,
      acked: { idempotent: ledger.filter((m) => m.idempotent && m.state === 'acked').length, plain: ledger.filter((m) => !m.idempotent && m.state === 'acked').length },
      failed: failuresByCode(ledger),
      storedUnacked: verdict.storedUnacked,
      idempotentAcrossCrash: acrossCrash.length,
      duplicateAcks: ledger.filter((m) => m.duplicate).length,
      messagesInLog: logs.reduce((a, l) => a + l.offsets.length, 0),
      startMs: startMs.map((ms) => Math.round(ms)),
      readBackMsMax: Math.round(readBackMsMax),
      trailingReads,
      midStartKills,
      workDir,
    }
  } catch (err) {
    problems.push(`the run stopped: ${err instanceof Error ? err.message : String(err)}`)
  } finally {
    void lanes.stop(0)
    await Promise.all([idemClient.close(), plainClient.close(), readClient.close()])
    await broker.close()
  }
  if (problems.length > 0 || report === null) throw new CrashRunFailure(opts, workDir, problems, broker.tail())
  if (!opts.keep) await rm(workDir, { recursive: true, force: true })
  return report
}
