/**
 * A raftmq node: takes the data directory's lock, opens the controller group, starts
 * the worker threads and opens every partition group the metadata lists, then accepts
 * clients. `stop()` undoes it in reverse: stop accepting, let requests in flight finish,
 * close every group (its database included) and release the lock. `shutdown()` does the
 * same and resolves with what was wrong with the storage by then (a full disk stalling a
 * WAL, an I/O error that stopped a worker, something that could not be closed), logged
 * as one line, "shut down after a storage failure", instead of "shut down cleanly";
 * every store is closed either way. A node process (runNodeProcess) then exits 0, or 3
 * with one stderr line naming the failure.
 *
 * Storage failpoints (src/storage/wal/failpoints.ts) armed through RAFTMQ_FAILPOINTS are
 * checked before anything starts, and named in a warning when the node starts.
 *
 * A node with peers (`--peers`) also listens for them (src/broker/peer), joins the
 * metadata group if it is one of its voters (the first three nodes), and does not wait
 * for it: the metadata it restored is what it knows until the group's leader tells it
 * more, and every applied change brings its replicas in line (local-replicas.ts). It
 * registers where its clients connect, in the background, until the metadata holds it.
 *
 * Imports base, storage, replica (types), group and ./ modules of the broker.
 */
import { join } from 'node:path'
import { pino } from 'pino'
import type { Logger } from 'pino'
import { fail, ok } from '../base/index.js'
import type { Result } from '../base/index.js'
import { DataDir, NodeWalFs, recoverWals, removeGenerations } from '../storage/index.js'
import { FAILPOINTS_ENV, Failpoints } from '../storage/wal/failpoints.js'
import type { StorageTrouble } from '../replica/group-runtime.js'
import type { Topic } from '../controller/index.js'
import { CONTROLLER_GROUP_ID, Controller } from './controller.js'
import type { MetadataReplica } from './controller.js'
import { MetadataObserver } from './metadata-observer.js'
import { GroupHost } from './group-host.js'
import { Cluster } from './cluster.js'
import { LocalReplicas } from './local-replicas.js'
import { PeerTransport } from './peer/index.js'
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
  /** `stop`, resolving with what was wrong with the storage by the end (both lists empty: a clean stop). */
  shutdown(reason?: string): Promise<StopReport>
}

/** What was wrong with the node's storage when it stopped: both empty after a clean run. */
export interface StopReport {
  /** Write-ahead logs that refused writes at the end, by thread (`worker 0`, `controller`). */
  readonly storage: ReadonlyArray<{ readonly where: string } & StorageTrouble>
  /** What could not be closed, and why (everything else was closed all the same). */
  readonly closeErrors: readonly string[]
}

/**
 * The exit code of a node process that stopped after a storage failure, or without
 * closing everything (0: stopped cleanly; 1: could not start).
 */
export const EXIT_STORAGE_FAILURE = 3

/**
 * One line for a stop that was not clean: the code (STORAGE_FAILED before STORAGE_FULL;
 * null when only something failed to close) and what happened where, with what to do;
 * null for a clean stop.
 */
/** Failures named in the stderr line of a stop; the rest are counted. */
const LINE_ITEMS_MAX = 3

export function stopFailure(report: StopReport): { readonly code: 'STORAGE_FAILED' | 'STORAGE_FULL' | null; readonly line: string } | null {
  const failed = report.storage.filter((s) => s.code === 'STORAGE_FAILED')
  const full = report.storage.filter((s) => s.code === 'STORAGE_FULL')
  // one line a person can read: the first few, then how many more (the log has every one)
  const few = (items: readonly string[]): string => (items.length <= LINE_ITEMS_MAX ? items.join('; ') : `${items.slice(0, LINE_ITEMS_MAX).join('; ')}; and ${items.length - LINE_ITEMS_MAX} more (see the log)`)
  const where = (list: typeof report.storage): string => few(list.map((s) => `${s.where}: ${s.message}`))
  const notClosed = report.closeErrors.length > 0 ? `; not closed: ${few(report.closeErrors)}` : ''
  if (failed.length > 0) {
    return { code: 'STORAGE_FAILED', line: `after a storage failure (${where(failed)})${full.length > 0 ? `; the disk was also full (${where(full)})` : ''}${notClosed}; acknowledged messages are in the write-ahead log: restart once the disk is fixed` }
  }
  if (full.length > 0) {
    return { code: 'STORAGE_FULL', line: `while the disk was full (${where(full)})${notClosed}; writes waiting for space were not acknowledged, nothing acknowledged is lost: free space and start again` }
  }
  if (report.closeErrors.length > 0) return { code: null, line: `without closing everything (${few(report.closeErrors)})` }
  return null
}

export type StartError = 'CONFIG' | 'DATA_DIR' | 'LISTEN' | 'CONTROLLER' | 'STORAGE'

/** How often a node that has not registered its client address tries again. */
const REGISTER_RETRY_MS = 1_000
/** How long a node beyond the metadata group's voters waits at start for its first metadata. */
const OBSERVER_WAIT_MS = 120_000
/** How often it says it is still waiting, and asks again. */
const OBSERVER_ASK_MS = 5_000

/**
 * A node that observes the metadata group opens nothing before it holds the cluster's
 * metadata: it asks the voters it reaches and says on the log what it is waiting for.
 */
async function awaitObservedMetadata(controller: MetadataReplica, cluster: Cluster, config: BrokerConfig, log: Logger): Promise<boolean> {
  const until = Date.now() + OBSERVER_WAIT_MS
  for (let first = true; Date.now() < until; first = false) {
    cluster.askForMetadata()
    if (await controller.ready(Math.min(first ? 1_000 : OBSERVER_ASK_MS, until - Date.now()))) return true
    const up = cluster.controllerVoters.filter((id) => cluster.isUp(id))
    log.warn(
      { voters: cluster.controllerVoters, up, add: `raftmq node add ${config.nodeId} --peer ${config.peerListen!.host}:${config.peerListen!.port}` },
      up.length === 0
        ? 'waiting for the metadata group\'s voters to connect (they dial this node once it is a member: a node new to a running cluster is added with the command in `add`)'
        : 'waiting for the cluster metadata from the metadata group\'s leader',
    )
  }
  return false
}

export async function startNode(config: BrokerConfig): Promise<Result<RunningNode, StartError>> {
  const log = pino({ level: config.logLevel, base: { node: config.nodeId } })
  const failpoints = Failpoints.fromEnv()
  if (!failpoints.ok) return fail('CONFIG', failpoints.error.message)
  if (failpoints.value !== null) {
    log.warn({ env: FAILPOINTS_ENV, failpoints: failpoints.value.describe() }, `failpoints armed (${FAILPOINTS_ENV}): storage faults are injected on purpose; for tests only`)
  }
  if (await DataDir.releaseBallastIfFull(config.dataDir, config.ballastMb << 20).catch(() => false)) {
    log.warn({ dataDir: config.dataDir, ballastMb: config.ballastMb }, 'the disk is full: released the ballast so the node can start and serve reads; writes are refused with STORAGE_FULL until space is freed')
  }
  const dataDir = await DataDir.open(config.dataDir, { nodeId: config.nodeId })
  if (!dataDir.ok) return fail('DATA_DIR', dataDir.error.message)
  const dir = dataDir.value
  let controller: MetadataReplica | null = null
  let groups: GroupHost | null = null
  let transport: PeerTransport | null = null
  let replicas: LocalReplicas | null = null
  const codecs = new CodecPool()
  // every step runs whatever the ones before it did, so every store and the lock are closed
  const undo = async (): Promise<StopReport> => {
    const storage: Array<{ where: string } & StorageTrouble> = []
    const closeErrors: string[] = []
    const step = async (what: string, f: () => Promise<void>): Promise<void> => {
      try {
        await f()
      } catch (err) {
        closeErrors.push(`${what}: ${err instanceof Error ? err.message : String(err)}`)
      }
    }
    cluster?.close()
    await step('peer transport', async () => {
      await transport?.close()
    })
    await step('workers', async () => {
      for (const w of (await groups?.stop()) ?? []) {
        for (const t of w.storage) storage.push({ where: `worker ${w.worker}`, ...t })
        closeErrors.push(...w.closeErrors.map((e) => `worker ${w.worker}: ${e}`))
      }
    })
    await step('codec pool', () => codecs.close())
    await step('controller', async () => {
      for (const t of (await controller?.close()) ?? []) storage.push({ where: 'controller', ...t })
    })
    await step('data directory', () => dir.close())
    return { storage, closeErrors }
  }
  let cluster: Cluster | null = null
  try {
    await dir.ensureBallast(config.ballastMb << 20)
    if (config.peers.length > 0) {
      const peers = new Map(config.peers.filter((m) => m.id !== config.nodeId).map((m) => [m.id, m.peer]))
      const started = await PeerTransport.start({
        nodeId: config.nodeId,
        clusterId: config.clusterId,
        listen: config.peerListen!,
        peers,
        log,
        onMessage: (from, channel, payload) => cluster?.onMessage(from, channel, payload),
        onPeerUp: (id) => cluster?.peerUp(id),
        onPeerDown: (id) => cluster?.peerDown(id),
      })
      if (!started.ok) {
        await undo()
        return fail('LISTEN', `cannot listen for peers on ${config.peerListen!.host}:${config.peerListen!.port}: ${started.error.message}`)
      }
      transport = started.value
    }
    cluster = new Cluster({ nodeId: config.nodeId, members: config.peers.map((m) => m.id), link: transport, log })
    const theCluster = cluster
    // every applied metadata change: members to dial, observers to tell, replicas to open or close
    const onMetadata = (): void => {
      if (controller === null) return
      theCluster.learnMembers(controller.metadata.added)
      theCluster.metadataApplied()
      if (replicas !== null) void replicas.reconcile(() => controller!.metadata)
    }
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
    const observes = !cluster.single && !cluster.controllerVoters.includes(config.nodeId)
    const opened = observes
      ? ok(new MetadataObserver({ leaderOf: () => theCluster.leaderOf(CONTROLLER_GROUP_ID), onApplied: onMetadata, log }))
      : await Controller.open({
          dir: dir.groupDir(CONTROLLER_GROUP_ID),
          walDir: join(generation, 'main'),
          fs,
          nodeId: config.nodeId,
          voters: cluster.controllerVoters,
          electionTicks: config.electionTicks,
          ...(expect.has(CONTROLLER_GROUP_ID) ? { expectApplied: expect.get(CONTROLLER_GROUP_ID)! } : {}),
          log,
          peers: {
            sendToPeers: (msgs) => theCluster.sendControllerMessages(msgs),
            onLeader: (leader, term) => theCluster.localLeader(CONTROLLER_GROUP_ID, leader, term),
          },
          onApplied: onMetadata,
        })
    if (!opened.ok) {
      await undo()
      return fail('STORAGE', `cannot start: ${opened.error.message}`)
    }
    controller = opened.value
    cluster.attachMetadata(controller)
    onMetadata()
    const tick = setInterval(() => controller!.tick(), config.tickMs)
    if (cluster.single && !(await controller.ready(30_000))) {
      clearInterval(tick)
      await undo()
      return fail('CONTROLLER', 'the metadata group did not become ready within 30 s')
    }
    if (observes && !(await awaitObservedMetadata(controller, cluster, config, log))) {
      clearInterval(tick)
      await undo()
      return fail('CONTROLLER', `no metadata from the metadata group's voters (nodes ${cluster.controllerVoters.join(', ')}) within ${OBSERVER_WAIT_MS / 1000} s: are they running, and was this node added (raftmq node add ${config.nodeId} --peer ${config.peerListen!.host}:${config.peerListen!.port})?`)
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
      ...(config.viewEntriesMax > 0 ? { viewEntriesMax: config.viewEntriesMax } : {}),
    })
    const host = groups
    host.onEvent = (ev) => {
      if (ev.ev === 'raft') theCluster.sendRaft(ev.to, ev.bytes)
      else if (ev.ev === 'conf') theCluster.reportConf(ev.gid, ev.index, ev.voters)
      else theCluster.localLeader(ev.gid, ev.leader, ev.term)
    }
    cluster.attach(
      (items) => host.deliver(items),
      (id) => host.peerDown(id),
    )
    const local = new LocalReplicas({
      nodeId: config.nodeId,
      electionTicks: config.electionTicks,
      groups,
      groupDir: (g) => dir.groupDir(g),
      expect: new Map(expect),
      log,
      onRemoved: (gid) => theCluster.forget(gid),
    })
    const openTopic = (topic: Topic): Promise<string | null> => local.openTopic(topic)
    const closeTopic = (topic: Topic): Promise<void> => local.closeTopic(topic)
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
    replicas = local
    // metadata applied while the groups opened (a peer's leader may have sent more)
    void local.reconcile(() => controller!.metadata)
    // every group's checkpoint is in this run's logs now: the replayed ones may go
    const removed = removeGenerations(fs, walRoot, recovered.value.generations)
    if (!removed.ok) log.warn({ err: removed.error.message }, 'could not remove replayed write-ahead logs; they are replayed again at the next start')
    const counters = { produceRequests: 0 }
    const ctx: BrokerContext = { config, controller, cluster, groups, codecs, log, openTopic, closeTopic, counters }
    let server: ClientServer
    try {
      server = await ClientServer.listen(ctx, config.listen.host, config.listen.port)
    } catch (err) {
      clearInterval(tick)
      await undo()
      return fail('LISTEN', `cannot listen on ${config.listen.host}:${config.listen.port}: ${err instanceof Error ? err.message : String(err)}`)
    }
    const address = server.address()
    const advertised = config.advertise ?? address
    let registering: NodeJS.Timeout | null = null
    let stopping = false
    const register = (): void => {
      registering = null
      if (stopping) return
      const known = controller!.metadata.nodes.get(config.nodeId)
      if (known && known.host === advertised.host && known.port === advertised.port) return
      void theCluster.submit({ op: 'registerNode', id: config.nodeId, host: advertised.host, port: advertised.port }).then((r) => {
        if (r.ok) log.info({ host: advertised.host, port: advertised.port }, 'registered this node\'s client address in the metadata')
        if (!r.ok && !stopping) {
          log.warn({ code: r.error.code, err: r.error.message, retryMs: REGISTER_RETRY_MS }, 'could not register this node\'s client address yet; trying again')
          registering = setTimeout(register, REGISTER_RETRY_MS)
          registering.unref()
        }
      })
    }
    register()
    log.info(
      {
        listen: `${address.host}:${address.port}`,
        ...(transport ? { peerListen: `${transport.address.host}:${transport.address.port}`, peers: cluster.members } : {}),
        dataDir: config.dataDir,
        workers: config.workers,
        topics: controller.metadata.topics.size,
      },
      'raftmq node started',
    )
    let stopped: Promise<StopReport> | null = null
    const shutdown = (reason = 'stop'): Promise<StopReport> => {
      stopped ??= (async () => {
        stopping = true
        log.info({ reason }, 'shutting down: no new connections, finishing requests in flight')
        await server.close(config.shutdownTimeoutMs)
        clearInterval(tick)
        if (registering !== null) clearTimeout(registering)
        const report = await undo()
        const failure = stopFailure(report)
        if (failure === null) log.info({}, 'shut down cleanly')
        else log.error({ reason, code: failure.code, storage: report.storage, closeErrors: report.closeErrors, why: failure.line }, failure.code === null ? 'shut down without closing everything' : 'shut down after a storage failure')
        log.flush()
        return report
      })()
      return stopped
    }
    return ok({
      config,
      address,
      workerRequestsInFlight: () => groups!.inFlight,
      async stats() {
        return { walSyncs: (await groups!.syncs()) + controller!.syncs, produceRequests: counters.produceRequests }
      },
      async stop(reason?: string): Promise<void> {
        await shutdown(reason)
      },
      shutdown,
    })
  } catch (err) {
    await undo().catch(() => {})
    return fail('CONTROLLER', `cannot start: ${err instanceof Error ? err.message : String(err)}`)
  }
}

/**
 * What a process that is a node does: start it, then stop it on the first SIGINT or
 * SIGTERM and exit 0; or, when its storage had failed (stopFailure), write one line
 * `<prefix>: STORAGE_FAILED|STORAGE_FULL: stopped on SIGTERM ...` on stderr and exit
 * EXIT_STORAGE_FAILURE (3). A node that cannot start is reported on stderr with
 * `prefix` and the process exits 1, as it does if shutting down throws (a bug). A second
 * signal, or a shutdown still unfinished SHUTDOWN_GRACE_MS after the requests' shutdown
 * timeout, exits 3 at once with a line saying so.
 */
/** How long closing may take after the requests in flight have had their shutdown timeout. */
const SHUTDOWN_GRACE_MS = 30_000

export async function runNodeProcess(config: BrokerConfig, prefix: string): Promise<void> {
  const node = await startNode(config)
  if (!node.ok) {
    process.stderr.write(`${prefix}: ${node.error.message}\n`)
    process.exit(1)
  }
  let stopping = false
  const stop = (signal: string): void => {
    if (stopping) {
      // a second signal: the operator will not wait; acknowledged data is in the synced WAL either way
      process.stderr.write(`${prefix}: ${signal} again: exiting now, before every store is closed (nothing acknowledged is lost; the next start replays the write-ahead log)\n`)
      process.exit(EXIT_STORAGE_FAILURE)
    }
    stopping = true
    // a close that hangs (a dead disk) must not keep the process forever
    const deadlineMs = config.shutdownTimeoutMs + SHUTDOWN_GRACE_MS
    setTimeout(() => {
      process.stderr.write(`${prefix}: shutdown did not finish within ${Math.round(deadlineMs / 1000)} s (a store or worker did not close: a hung disk?); exiting without closing everything (nothing acknowledged is lost)\n`)
      process.exit(EXIT_STORAGE_FAILURE)
    }, deadlineMs).unref()
    node.value.shutdown(signal).then(
      (report) => {
        const failure = stopFailure(report)
        if (failure === null) process.exit(0)
        process.stderr.write(`${prefix}: ${failure.code === null ? '' : `${failure.code}: `}stopped on ${signal} ${failure.line}\n`)
        process.exit(EXIT_STORAGE_FAILURE)
      },
      (err: unknown) => {
        process.stderr.write(`${prefix}: shutting down failed: ${err instanceof Error ? err.message : String(err)}\n`)
        process.exit(1)
      },
    )
  }
  // the benchmarks ask a node in another process what it counted (fsyncs per request)
  process.on('SIGUSR2', () => {
    void node.value.stats().then((s) => process.stdout.write(`raftmq stats ${JSON.stringify(s)}\n`))
  })
  process.on('SIGINT', () => stop('SIGINT'))
  process.on('SIGTERM', () => stop('SIGTERM'))
}
