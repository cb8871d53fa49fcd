/**
 * A raftmq node: takes the data directory's lock, opens the controller group, starts
 * the worker threads and opens every partition group the metadata lists, then accepts
 * clients. `stop()` undoes it in reverse: stop accepting, let requests in flight finish,
 * close every group (its database included) and release the lock.
 *
 * Imports base, storage, group and ./ modules of the broker.
 */
import { join } from 'node:path'
import { pino } from 'pino'
import { fail, ok } from '../base/index.js'
import type { Result } from '../base/index.js'
import { DataDir, NodeWalFs, recoverWals, removeGenerations } from '../storage/index.js'
import type { Topic } from '../controller/index.js'
import { CONTROLLER_GROUP_ID, Controller } from './controller.js'
import { GroupHost } from './group-host.js'
import { CodecPool } from './codec-pool.js'
import { ClientServer } from './server.js'
import type { BrokerConfig } from './config.js'
import type { BrokerContext } from './handlers.js'

export interface RunningNode {
  readonly config: BrokerConfig
  /** Where clients connect (the port is the real one when the config asked for 0). */
  readonly address: { readonly host: string; readonly port: number }
  /** Requests to partition workers awaiting their reply, parked long polls included. */
  workerRequestsInFlight(): number
  /** Durable WAL commits (each one write and one fdatasync) of every thread, and produce requests served, since start. */
  stats(): Promise<{ readonly walSyncs: number; readonly produceRequests: number }>
  stop(reason?: string): Promise<void>
}

export type StartError = 'DATA_DIR' | 'LISTEN' | 'CONTROLLER' | 'STORAGE'

export async function startNode(config: BrokerConfig): Promise<Result<RunningNode, StartError>> {
  const log = pino({ level: config.logLevel, base: { node: config.nodeId } })
  if (await DataDir.releaseBallastIfFull(config.dataDir, config.ballastMb << 20).catch(() => false)) {
    log.warn({ dataDir: config.dataDir, ballastMb: config.ballastMb }, 'the disk is full: released the ballast so the node can start and serve reads; writes are refused with STORAGE_FULL until space is freed')
  }
  const dataDir = await DataDir.open(config.dataDir, { nodeId: config.nodeId })
  if (!dataDir.ok) return fail('DATA_DIR', dataDir.error.message)
  const dir = dataDir.value
  const voters = [config.nodeId]
  let controller: Controller | null = null
  let groups: GroupHost | null = null
  const codecs = new CodecPool()
  const undo = async (): Promise<void> => {
    await groups?.stop()
    await codecs.close()
    await controller?.close()
    await dir.close()
  }
  try {
    await dir.ensureBallast(config.ballastMb << 20)
    // every write-ahead log of the previous run goes into the partition stores first (recovery.ts)
    const fs = new NodeWalFs()
    const walRoot = join(dir.groupDir(CONTROLLER_GROUP_ID), '..', '..', 'wal')
    const recovered = await recoverWals({ fs, walRoot, groupDir: (g) => dir.groupDir(g), log })
    if (!recovered.ok) {
      await undo()
      return fail('STORAGE', `cannot start on this data directory: ${recovered.error.message}`)
    }
    const generation = join(walRoot, recovered.value.nextGeneration)
    const expect = recovered.value.expect
    const opened = await Controller.open({
      dir: dir.groupDir(CONTROLLER_GROUP_ID),
      walDir: join(generation, 'main'),
      fs,
      nodeId: config.nodeId,
      voters,
      electionTicks: config.electionTicks,
      ...(expect.has(CONTROLLER_GROUP_ID) ? { expectApplied: expect.get(CONTROLLER_GROUP_ID)! } : {}),
      log,
    })
    if (!opened.ok) {
      await undo()
      return fail('STORAGE', `cannot start: ${opened.error.message}`)
    }
    controller = opened.value
    const tick = setInterval(() => controller!.tick(), config.tickMs)
    if (!(await controller.ready(30_000))) {
      clearInterval(tick)
      await undo()
      return fail('CONTROLLER', 'the metadata group did not become ready within 30 s')
    }
    groups = await GroupHost.start({
      workers: config.workers,
      log,
      logLevel: config.logLevel,
      nodeId: config.nodeId,
      tickMs: config.tickMs,
      retentionCheckMs: config.retentionCheckMs,
      producerExpiryMs: config.producerExpiryMs,
      walGeneration: generation,
      walSegmentBytes: config.walSegmentMb << 20,
    })
    const openTopic = async (topic: Topic): Promise<string | null> => {
      const errors = await Promise.all(
        topic.partitions.map((p) =>
          groups!.openGroup({
            groupId: p.groupId,
            dir: dir.groupDir(p.groupId),
            nodeId: config.nodeId,
            voters: p.replicas,
            topic: topic.name,
            partition: p.partition,
            retentionMs: topic.config.retentionMs,
            retentionBytes: topic.config.retentionBytes,
            electionTicks: config.electionTicks,
            ...(expect.has(p.groupId) ? { expectApplied: expect.get(p.groupId)! } : {}),
          }),
        ),
      )
      return errors.find((e) => e !== null) ?? null
    }
    const closeTopic = async (topic: Topic): Promise<void> => {
      for (const p of topic.partitions) await groups!.closeGroup(p.groupId, true)
    }
    // a crash between deleting a topic's metadata and its data leaves directories no topic owns:
    // set aside, never deleted because metadata forgot them (an operator purges them)
    const owned = new Set([String(CONTROLLER_GROUP_ID), ...controller.metadata.groups().map((g) => String(g.assignment.groupId))])
    for (const name of await dir.groupIds()) {
      if (!owned.has(name)) {
        const moved = await dir.quarantineGroup(name)
        if (!moved.ok) throw new Error(moved.error.message)
        const remove = `raftmq data quarantine purge ${moved.value.split(/[\\/]/).pop()} --data-dir ${config.dataDir}`
        log.warn({ group: name, quarantine: moved.value, remove }, 'moved the data of a group no topic owns to quarantine')
      }
    }
    for (const topic of controller.metadata.topics.values()) {
      const err = await openTopic(topic)
      if (err !== null) {
        clearInterval(tick)
        await undo()
        return fail('STORAGE', `cannot start: topic ${topic.name}: ${err}`)
      }
    }
    // every group's checkpoint is in this run's logs now: the replayed ones may go
    const removed = removeGenerations(fs, walRoot, recovered.value.generations)
    if (!removed.ok) log.warn({ err: removed.error.message }, 'could not remove replayed write-ahead logs; they are replayed again at the next start')
    const counters = { produceRequests: 0 }
    const ctx: BrokerContext = { config, controller, groups, codecs, log, openTopic, closeTopic, counters }
    let server: ClientServer
    try {
      server = await ClientServer.listen(ctx, config.listen.host, config.listen.port)
    } catch (err) {
      clearInterval(tick)
      await undo()
      return fail('LISTEN', `cannot listen on ${config.listen.host}:${config.listen.port}: ${err instanceof Error ? err.message : String(err)}`)
    }
    const address = server.address()
    log.info(
      { listen: `${address.host}:${address.port}`, dataDir: config.dataDir, workers: config.workers, topics: controller.metadata.topics.size },
      'raftmq node started',
    )
    let stopped: Promise<void> | null = null
    return ok({
      config,
      address,
      workerRequestsInFlight: () => groups!.inFlight,
      async stats() {
        return { walSyncs: (await groups!.syncs()) + controller!.syncs, produceRequests: counters.produceRequests }
      },
      stop(reason = 'stop'): Promise<void> {
        stopped ??= (async () => {
          log.info({ reason }, 'shutting down: no new connections, finishing requests in flight')
          await server.close(config.shutdownTimeoutMs)
          clearInterval(tick)
          await undo()
          log.info({}, 'shut down cleanly')
          log.flush()
        })()
        return stopped
      },
    })
  } catch (err) {
    await undo().catch(() => {})
    return fail('CONTROLLER', `cannot start: ${err instanceof Error ? err.message : String(err)}`)
  }
}

/**
 * What a process that is a node does: start it, then stop it cleanly on the first
 * SIGINT or SIGTERM and exit 0. A node that cannot start is reported on stderr with
 * `prefix` and the process exits 1.
 */
export async function runNodeProcess(config: BrokerConfig, prefix: string): Promise<void> {
  const node = await startNode(config)
  if (!node.ok) {
    process.stderr.write(`${prefix}: ${node.error.message}\n`)
    process.exit(1)
  }
  let stopping = false
  const stop = (signal: string): void => {
    if (stopping) return
    stopping = true
    void node.value.stop(signal).then(() => process.exit(0))
  }
  // the benchmarks ask a node in another process what it counted (fsyncs per request)
  process.on('SIGUSR2', () => {
    void node.value.stats().then((s) => process.stdout.write(`raftmq stats ${JSON.stringify(s)}\n`))
  })
  process.on('SIGINT', () => stop('SIGINT'))
  process.on('SIGTERM', () => stop('SIGTERM'))
}
