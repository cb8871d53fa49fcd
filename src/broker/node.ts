/**
 * A raftmq node: takes the data directory's lock, opens the controller group, starts
 * the worker threads and opens every partition group the metadata lists, then accepts
 * clients. `stop()` undoes it in reverse: stop accepting, let requests in flight finish,
 * close every group (its database included) and release the lock.
 *
 * Imports base, storage, group and ./ modules of the broker.
 */
import { pino } from 'pino'
import { fail, ok } from '../base/index.js'
import type { Result } from '../base/index.js'
import { DataDir } from '../storage/index.js'
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
  stop(reason?: string): Promise<void>
}

export type StartError = 'DATA_DIR' | 'LISTEN' | 'CONTROLLER'

export async function startNode(config: BrokerConfig): Promise<Result<RunningNode, StartError>> {
  const log = pino({ level: config.logLevel, base: { node: config.nodeId } })
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
    controller = await Controller.open({ dir: dir.groupDir(CONTROLLER_GROUP_ID), nodeId: config.nodeId, voters, electionTicks: config.electionTicks, log })
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
    })
    const openTopic = async (topic: Topic): Promise<void> => {
      await Promise.all(
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
          }),
        ),
      )
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
    for (const topic of controller.metadata.topics.values()) await openTopic(topic)
    const ctx: BrokerContext = { config, controller, groups, codecs, log, openTopic, closeTopic }
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
  process.on('SIGINT', () => stop('SIGINT'))
  process.on('SIGTERM', () => stop('SIGTERM'))
}
