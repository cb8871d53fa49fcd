/**
 * The cluster fault scenario (issue 8, item 10), shared by cluster-faults.test.ts (a short
 * fixed slice) and the long runner (`npm run chaos -- --minutes M --seed S`, chaos.ts).
 *
 * Three node processes (cluster-process.ts), every node-to-node link through a fault
 * proxy, one topic of a few partitions with replication factor 3. The four lanes of
 * lanes.ts (idempotent send and sendBatch, plain send and sendBatch with `retries: 0`)
 * produce all the time, bootstrapped from every node, while a seeded schedule (src/base
 * Prng) injects faults one after another:
 *   leader-kill      kill -9 the leader of a random partition (client metadata), restart it
 *                    after a random while
 *   pause            SIGSTOP a random node for 1–8 s, then SIGCONT
 *   isolate-drop     cut a node off: every proxy on its links drops (a black hole; half
 *                    the time its current connections are reset first), then heal
 *   isolate-delay    the same with 50–500 ms of latency on its links
 *   isolate-one-way  the same with one direction cut: nothing in, or nothing out
 *   rolling-restart  every node in turn: SIGTERM (exit 0 expected), wait, start, and wait
 *                    until every lane is acknowledged again
 * After each fault heals, every lane must be acknowledged again on every partition within PROGRESS_WAIT_MS
 * (liveness, per fault). The epoch of a message is the number of faults before it.
 *
 * The checks, at the end (everything healed, every node up, every lane acknowledged again):
 *   - through the leaders, each partition read from 0 against the ledger (lanes.ts
 *     checkLedger): offsets dense, every value one we sent, no id twice, every acknowledged
 *     message at its offset, lane order per partition, no idempotent failure;
 *   - then every node stops cleanly (SIGTERM, exit 0) and the replicas' partition stores
 *     are compared offline: each node's `<data-dir>/groups/<gid>` (gid = partition + 1:
 *     the controller is group 0 and hands out 1..P to the first topic's partitions in
 *     order; the directory listing is checked against that) is copied and opened with
 *     GroupStore, and the three must hold byte-identical record batches at the same
 *     offsets — the whole stored batch, baseOffset and partitionLeaderEpoch included,
 *     since every replica applies the same committed entry. A replica whose store ends
 *     before the high watermark is "behind" (a separate count);
 *   - snapshot transfers (a replica behind its leader's log view catching up by snapshot)
 *     are counted per node from their log lines, installed and aborted (not by
 *     themselves failures);
 *   - every broker line at level error is listed (not by itself a failure).
 *
 * Timing is real: a seed fixes the schedule (which fault, which node, how long), not the
 * interleaving.
 *
 * Imports the client, base, storage, src/cli/table and the process-test modules.
 */
import { cp, mkdtemp, readFile, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Prng } from '../../src/base/index.js'
import { plainTable, render } from '../../src/cli/table.js'
import { Client } from '../../src/client/index.js'
import { GroupStore } from '../../src/storage/index.js'
import { describeMode } from '../support/fault-proxy.js'
import { ClusterProcess } from './cluster-process.js'
import type { LinkFault } from './cluster-process.js'
import { LANES, Lanes, checkLedger, failuresByCode, readPartitionLog } from './lanes.js'
import type { Lane, PartitionLog } from './lanes.js'

export const FAULT_KINDS = ['leader-kill', 'pause', 'isolate-drop', 'isolate-delay', 'isolate-one-way', 'rolling-restart'] as const
export type FaultKind = (typeof FAULT_KINDS)[number]

export interface ClusterRunOptions {
  readonly seed: number
  /** Inject faults until this much time has passed (the long run)... */
  readonly durationMs?: number
  /** ...or exactly these, in this order (the test's slice). */
  readonly faults?: readonly FaultKind[]
  readonly partitions?: number
  /** Caps every fault's random duration (down time, pause, cut), for a short run. */
  readonly faultMsMax?: number
  /** A line per fault. */
  readonly progress?: (line: string) => void
  /** Keep the work directory (data, logs) even when the run passes. */
  readonly keep?: boolean
}

export interface ClusterReport {
  readonly seed: number
  readonly durationMs: number
  readonly partitions: number
  readonly sent: number
  readonly acked: Readonly<Record<Lane, number>>
  readonly failed: Readonly<Record<string, number>>
  readonly faults: Readonly<Record<FaultKind, number>>
  readonly lost: number
  readonly duplicated: number
  readonly offsetMismatches: number
  readonly outOfOrder: number
  readonly storedUnacked: number
  /** Batches at one offset whose bytes differ between replicas, or offsets one replica has and another lacks below its end. */
  readonly replicaMismatches: number
  /** Replicas whose store ends before the partition's high watermark. */
  readonly replicasBehind: number
  readonly messagesInLog: number
  readonly brokerErrors: readonly string[]
  /** Snapshots installed ('caught up by snapshot') and transfers aborted, per node. */
  readonly snapshotsInstalled: Readonly<Record<number, number>>
  readonly snapshotTransfersAborted: Readonly<Record<number, number>>
  /** Every anomaly and failed expectation; empty when the run passed. */
  readonly problems: readonly string[]
  readonly workDir: string
  readonly replay: string
}

const TOPIC = 'chaos'
/** After a fault heals, every lane must be acknowledged again within this. */
const PROGRESS_WAIT_MS = 45_000
const DRAIN_WAIT_MS = 60_000
/** Quiet time before the final clean stop, so followers learn the last commit index. */
const SETTLE_MS = 3_000

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

export async function runClusterScenario(opts: ClusterRunOptions): Promise<ClusterReport> {
  const t0 = performance.now()
  const seed = opts.seed
  const partitions = opts.partitions ?? 3
  const progress = opts.progress ?? (() => {})
  const capMs = opts.faultMsMax ?? Infinity
  const prng = new Prng(seed)
  const schedule = prng.fork()
  const replay = `npm run chaos -- --seed ${seed} ${opts.faults ? `--faults ${opts.faults.join(',')}` : `--minutes ${((opts.durationMs ?? 0) / 60_000).toFixed(1)}`} --partitions ${partitions}${opts.faultMsMax !== undefined ? ` --fault-ms-max ${opts.faultMsMax}` : ''}`

  const workDir = await mkdtemp(join(tmpdir(), 'raftmq-chaos-'))
  const cluster = await ClusterProcess.create({ workDir, args: ['--shutdown-timeout-ms', '5000', '--wal-segment-mb', '4', '--ballast-mb', '0'] })
  const clientOpts = { brokers: cluster.brokers(), connectTimeoutMs: 2_000, requestTimeoutMs: 6_000 }
  const idemClient = new Client({ ...clientOpts, clientId: 'chaos-idempotent' })
  const plainClient = new Client({ ...clientOpts, clientId: 'chaos-plain' })
  const readClient = new Client({ ...clientOpts, clientId: 'chaos-reader' })
  const producers = {
    idem: idemClient.producer({ idempotent: true, retries: 5_000, retryBackoffMs: 50, timeoutMs: 5_000 }),
    plain: plainClient.producer({ retries: 0, timeoutMs: 5_000 }),
  }

  const problems: string[] = []
  const faults = Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<FaultKind, number>
  let epoch = 0
  /** Acknowledgements per lane and partition (`${lane} ${partition}`). */
  const acks = new Map<string, number>()
  const keys = LANES.flatMap((l) => Array.from({ length: partitions }, (_, p) => `${l} ${p}`))
  const lanes = new Lanes({ topic: TOPIC, partitions, producers, prng, epoch: () => epoch, problems, onAck: (m) => acks.set(`${m.lane} ${m.partition}`, (acks.get(`${m.lane} ${m.partition}`) ?? 0) + 1) })
  const ackedCount = (): number => [...acks.values()].reduce((a, b) => a + b, 0)

  /**
   * Liveness after a fault: every lane is acknowledged again on every partition (a
   * partition stuck behind a cut-off leader must not hide behind the others' progress).
   */
  const mustProgress = async (after: string): Promise<string> => {
    const t = performance.now()
    const base = new Map(acks)
    const waiting = (): string[] => keys.filter((k) => (acks.get(k) ?? 0) === (base.get(k) ?? 0))
    while (waiting().length > 0 && performance.now() - t < PROGRESS_WAIT_MS) await sleep(20)
    const stuck = waiting()
    if (stuck.length === 0) return `every lane acknowledged again on every partition in ${Math.round(performance.now() - t)} ms`
    problems.push(`hang: no acknowledgement within ${PROGRESS_WAIT_MS} ms after ${after} for ${stuck.join(', ')} (pending: ${lanes.pending().length})`)
    return 'NO PROGRESS'
  }

  const leaderOf = async (partition: number): Promise<number | null> => {
    const until = Date.now() + 10_000
    while (Date.now() < until) {
      const md = await readClient.metadata([TOPIC]).catch(() => null)
      const l = md?.topics[0]?.partitions[partition]?.leader
      if (l != null) return l
      await sleep(100)
    }
    return null
  }
  const ms = (lo: number, hi: number): number => Math.min(schedule.range(lo, hi), Math.max(lo, capMs))

  const inject = async (kind: FaultKind): Promise<string> => {
    epoch++
    faults[kind]++
    switch (kind) {
      case 'leader-kill': {
        const p = schedule.int(partitions)
        const leader = (await leaderOf(p)) ?? schedule.pick(cluster.ids)
        const downMs = ms(300, 5_000)
        await cluster.kill(leader)
        await sleep(downMs)
        const startMs = await cluster.start(leader)
        return `killed node ${leader} (leader of partition ${p}), down ${downMs} ms, restarted in ${Math.round(startMs)} ms; ${await mustProgress(`restarting node ${leader}`)}`
      }
      case 'pause': {
        const id = schedule.pick(cluster.ids)
        const pauseMs = ms(1_000, 8_000)
        cluster.pause(id)
        await sleep(pauseMs)
        cluster.resume(id)
        return `SIGSTOP node ${id} for ${pauseMs} ms, SIGCONT; ${await mustProgress(`SIGCONT to node ${id}`)}`
      }
      case 'isolate-drop':
      case 'isolate-delay':
      case 'isolate-one-way': {
        const id = schedule.pick(cluster.ids)
        const fault: LinkFault = kind === 'isolate-drop' ? { kind: 'drop' } : kind === 'isolate-delay' ? { kind: 'delay', ms: schedule.range(50, 500) } : { kind: 'oneWay', cut: schedule.chance(0.5) ? 'in' : 'out' }
        const reset = schedule.chance(0.5)
        const cutMs = ms(2_000, 10_000)
        if (reset) cluster.resetLinks(id)
        cluster.isolate(id, fault)
        const modes = cluster.links(id).map((l) => `${l.other}: ${describeMode(l.proxy.mode)}`).join(', ')
        await sleep(cutMs)
        cluster.healAll()
        return `node ${id}'s links ${fault.kind === 'oneWay' ? `cut ${fault.cut}` : fault.kind === 'delay' ? `delayed ${fault.ms} ms` : 'dropped'} (${modes})${reset ? ' after a reset' : ''} for ${cutMs} ms, healed; ${await mustProgress(`healing node ${id}'s links`)}`
      }
      case 'rolling-restart': {
        const steps: string[] = []
        for (const id of cluster.ids) {
          const code = await cluster.stop(id)
          if (code !== 0) problems.push(`rolling restart: node ${id} exited with code ${code} on SIGTERM`)
          await sleep(ms(200, 1_500))
          const startMs = await cluster.start(id)
          steps.push(`node ${id} exit ${code}, up in ${Math.round(startMs)} ms, ${await mustProgress(`restarting node ${id}`)}`)
        }
        return `rolling restart: ${steps.join('; ')}`
      }
    }
  }

  let report: ClusterReport | null = null
  let logs: PartitionLog[] = []
  let verdict: ReturnType<typeof checkLedger> | null = null
  const replicas = { mismatches: 0, behind: 0 }
  try {
    await cluster.startAll()
    await readClient.admin().createTopic({ name: TOPIC, partitions, replicationFactor: 3 })
    lanes.start()
    await mustProgress('the start')

    // the schedule: a fixed list, or random kinds until the time is up
    const list = opts.faults
    const deadline = t0 + (opts.durationMs ?? 0)
    for (let n = 1; list ? n <= list.length : performance.now() < deadline; n++) {
      const kind = list ? list[n - 1]! : schedule.pick(FAULT_KINDS)
      const quietMs = ms(300, 2_500)
      await sleep(quietMs)
      const line = await inject(kind)
      progress(`fault ${n}${list ? `/${list.length}` : ''} ${kind}: ${line}; ${ackedCount()} acknowledged, ${Math.round((performance.now() - t0) / 1000)} s`)
      if (problems.length > 0 && !list) break
    }

    // liveness: all healed, all up, every lane acknowledged again
    cluster.healAll()
    for (const id of cluster.ids) if (!cluster.node(id).process.running) await cluster.start(id)
    await mustProgress('the final heal')
    const drained = await lanes.stop(DRAIN_WAIT_MS)
    if (!drained) problems.push(`hang: the producers did not finish within ${DRAIN_WAIT_MS} ms (still pending: ${lanes.pending().slice(0, 5).map((m) => m.id).join(', ')})`)

    for (let p = 0; p < partitions; p++) logs.push(await readPartitionLog(readClient, TOPIC, p, 0))
    verdict = checkLedger(lanes.ledger, logs)
    problems.push(...verdict.problems)

    await sleep(SETTLE_MS)
    for (const id of cluster.ids) {
      const code = await cluster.stop(id)
      if (code !== 0) problems.push(`the final clean shutdown of node ${id} (SIGTERM) exited with code ${code}`)
    }
    const cmp = await compareReplicas(cluster, workDir, partitions, logs)
    replicas.mismatches = cmp.mismatches
    replicas.behind = cmp.behind
    problems.push(...cmp.problems)
  } catch (err) {
    problems.push(`the run stopped: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`)
    logs = []
  } finally {
    void lanes.stop(0)
    await Promise.all([idemClient.close(), plainClient.close(), readClient.close()])
    await cluster.close()
  }

  const snapshotsInstalled: Record<number, number> = {}
  const snapshotTransfersAborted: Record<number, number> = {}
  for (const id of cluster.ids) {
    const lines = (await readFile(cluster.node(id).logFile, 'utf8').catch(() => '')).split('\n')
    snapshotsInstalled[id] = lines.filter((l) => l.includes('caught up by snapshot')).length
    snapshotTransfersAborted[id] = lines.filter((l) => l.includes('catching up by snapshot: transfer aborted')).length
  }
  const ledger = lanes.ledger
  report = {
    seed,
    durationMs: Math.round(performance.now() - t0),
    partitions,
    sent: ledger.length,
    acked: Object.fromEntries(LANES.map((l) => [l, ledger.filter((m) => m.lane === l && m.state === 'acked').length])) as Record<Lane, number>,
    failed: failuresByCode(ledger),
    faults,
    lost: verdict?.lost ?? 0,
    duplicated: verdict?.duplicated ?? 0,
    offsetMismatches: verdict?.offsetMismatches ?? 0,
    outOfOrder: verdict?.outOfOrder ?? 0,
    storedUnacked: verdict?.storedUnacked ?? 0,
    replicaMismatches: replicas.mismatches,
    replicasBehind: replicas.behind,
    messagesInLog: logs.reduce((a, l) => a + l.offsets.length, 0),
    brokerErrors: cluster.errors().map((e) => `node ${e.node}: ${JSON.stringify(e.line)}`),
    snapshotsInstalled,
    snapshotTransfersAborted,
    problems,
    workDir,
    replay,
  }
  if (problems.length === 0 && !opts.keep) await rm(workDir, { recursive: true, force: true })
  return report
}

/** The stored end offset of a RecordBatch v2 (baseOffset at 0, lastOffsetDelta at 23). */
function batchEnd(offset: number, bytes: Uint8Array): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  return offset + view.getInt32(23) + 1
}

/**
 * The partition stores of every node, offline (the nodes are stopped): group p + 1 of each
 * node, copied aside and opened with GroupStore, must hold the same batches at the same
 * offsets, byte for byte, and reach the high watermark the leader served.
 */
export async function compareReplicas(cluster: ClusterProcess, workDir: string, partitions: number, logs: readonly PartitionLog[]): Promise<{ problems: string[]; mismatches: number; behind: number }> {
  const problems: string[] = []
  let mismatches = 0
  let behind = 0
  const want = Array.from({ length: partitions + 1 }, (_, g) => String(g))
  for (const id of cluster.ids) {
    const have = (await readdir(join(cluster.node(id).dataDir, 'groups'))).sort((a, b) => Number(a) - Number(b))
    if (have.join(',') !== want.join(',')) problems.push(`node ${id}: groups/ holds ${have.join(',')}, expected the controller (0) and partitions 1..${partitions}`)
  }
  for (let p = 0; p < partitions; p++) {
    const gid = p + 1
    const stores = new Map<number, Array<[number, Uint8Array]>>()
    for (const id of cluster.ids) {
      const copy = join(workDir, 'inspect', `node-${id}`, String(gid))
      await cp(join(cluster.node(id).dataDir, 'groups', String(gid)), copy, { recursive: true })
      const opened = await GroupStore.open(copy, { mustExist: true })
      if (!opened.ok) {
        problems.push(`node ${id}: cannot open the store of partition ${p} (group ${gid}): ${opened.error.message}`)
        continue
      }
      const read = await opened.value.store.readRecords(0, Number.MAX_SAFE_INTEGER)
      await opened.value.store.close()
      if (!read.ok) problems.push(`node ${id}: cannot read partition ${p}: ${read.error.message}`)
      else stores.set(id, read.value)
    }
    const highWatermark = logs[p]?.highWatermark ?? 0
    const ends = new Map([...stores].map(([id, rs]) => [id, rs.length === 0 ? 0 : batchEnd(...rs[rs.length - 1]!)]))
    for (const [id, end] of ends) {
      if (end < highWatermark) {
        behind++
        problems.push(`replica behind: node ${id}'s store of partition ${p} ends at offset ${end}, the high watermark is ${highWatermark}`)
      }
    }
    // every pair of replicas: the same batch bytes at every offset both hold, and no offset only one holds below the shorter end
    const ids = [...stores.keys()]
    for (let x = 0; x < ids.length; x++) {
      for (let y = x + 1; y < ids.length; y++) {
        const [i, j] = [ids[x]!, ids[y]!]
        const a = new Map(stores.get(i)!)
        const b = new Map(stores.get(j)!)
        const common = Math.min(ends.get(i)!, ends.get(j)!)
        const shown: number[] = []
        let n = 0
        for (const off of new Set([...a.keys(), ...b.keys()])) {
          if (off >= common) continue
          const ba = a.get(off)
          const bb = b.get(off)
          if (ba === undefined || bb === undefined || Buffer.compare(ba, bb) !== 0) {
            n++
            if (shown.length < 5) shown.push(off)
          }
        }
        if (n > 0) {
          mismatches += n
          problems.push(`replica mismatch: partition ${p}, nodes ${i} and ${j} differ in ${n} batches below offset ${common}, e.g. at ${shown.join(', ')}`)
        }
      }
    }
  }
  return { problems, mismatches, behind }
}

/** The summary table: acknowledgements per lane, faults by kind, anomalies, the seed and its replay. */
export function formatClusterReport(r: ClusterReport): string {
  const t = plainTable(['', 'count'])
  for (const l of LANES) t.push([`acknowledged ${l}`, String(r.acked[l])])
  t.push(['sent', String(r.sent)], ['messages in the log', String(r.messagesInLog)], ['stored without an acknowledgement', String(r.storedUnacked)])
  for (const [k, n] of Object.entries(r.failed)) t.push([`failed ${k}`, String(n)])
  for (const k of FAULT_KINDS) t.push([`fault ${k}`, String(r.faults[k])])
  t.push(
    ['lost', String(r.lost)],
    ['duplicated', String(r.duplicated)],
    ['offset mismatches', String(r.offsetMismatches)],
    ['out of lane order', String(r.outOfOrder)],
    ['replica mismatches', String(r.replicaMismatches)],
    ['replicas behind', String(r.replicasBehind)],
    ['broker error lines', String(r.brokerErrors.length)],
    ['seed', String(r.seed)],
    ['minutes', (r.durationMs / 60_000).toFixed(1)],
  )
  const lines = [render(t), `replay: ${r.replay}`]
  if (r.brokerErrors.length > 0) lines.push('broker error lines:', ...r.brokerErrors.slice(0, 20).map((e) => `  ${e}`), ...(r.brokerErrors.length > 20 ? [`  ... and ${r.brokerErrors.length - 20} more`] : []))
  if (r.problems.length > 0) lines.push(`${r.problems.length} problems:`, ...r.problems.slice(0, 30).map((p) => `  - ${p}`), `work directory (data, node logs) kept in ${r.workDir}`)
  return lines.join('\n')
}
