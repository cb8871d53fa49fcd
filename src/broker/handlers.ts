/**
 * The request handlers: one function per API of protocol version 1, each taking the
 * node's context and a validated request body and returning the response body or a
 * wire error. They route by the controller's metadata and hand partition work to the
 * worker that hosts the partition's group; they never decode records. A partition this
 * node has no replica of is answered NOT_LEADER with the leader it knows of (the client
 * goes there); metadata commands run on the metadata group's leader, wherever it is
 * (cluster.ts).
 *
 * Imports base, protocol, controller and ./ modules of the broker.
 */
import { limits } from '../base/index.js'
import { PROTOCOL_VERSION_MAX, PROTOCOL_VERSION_MIN, negotiateVersion } from '../protocol/api.js'
import type { ApiName, ProduceSummary, RequestBody, ResponseBody } from '../protocol/api.js'
import { notLeader, wireError } from '../protocol/errors.js'
import type { WireError } from '../protocol/errors.js'
import type { MetadataError, Topic } from '../controller/index.js'
import type { WorkerReply } from '../replica/index.js'
import type { MetadataReplica } from './controller.js'
import type { Cluster, ControllerError } from './cluster.js'
import { proposeError } from '../replica/index.js'
import type { GroupHost } from './group-host.js'
import { wantsPool } from './codec-pool.js'
import type { CodecPool } from './codec-pool.js'
import type { BrokerConfig } from './config.js'
import type { ActorLogger } from '../group/index.js'

export const SERVER_NAME = 'raftmq 0.1.0'

export interface BrokerContext {
  readonly config: BrokerConfig
  readonly controller: MetadataReplica
  readonly cluster: Cluster
  readonly groups: GroupHost
  readonly codecs: CodecPool
  readonly log: ActorLogger
  /** Opens the partition groups of a topic that was just created; resolves with why one cannot serve, or null. */
  openTopic(topic: Topic): Promise<string | null>
  /** Closes a deleted topic's groups and removes their data. */
  closeTopic(topic: Topic): Promise<void>
  /** What the node counts (for `stats`, and the benchmarks' fsyncs per request). */
  readonly counters: { produceRequests: number }
}

export type HandlerResult<A extends ApiName> = { readonly ok: true; readonly body: ResponseBody<A> } | { readonly ok: false; readonly error: WireError }

type Handler<A extends ApiName> = (ctx: BrokerContext, body: RequestBody<A>) => Promise<HandlerResult<A>>

const done = <A extends ApiName>(body: ResponseBody<A>): HandlerResult<A> => ({ ok: true, body })
const failed = (error: WireError): { ok: false; error: WireError } => ({ ok: false, error })

/** The group holding topic/partition (hosted here), or the error a client should get. */
function route(ctx: BrokerContext, topic: string, partition: number): { gid: number } | { error: WireError } {
  const t = ctx.controller.metadata.topics.get(topic)
  if (!t) return { error: wireError('UNKNOWN_TOPIC', { topic }) }
  const p = t.partitions[partition]
  if (!p) return { error: wireError('UNKNOWN_PARTITION', { topic, partition }) }
  if (!ctx.groups.hasGroup(p.groupId)) {
    const leader = ctx.cluster.leaderOf(p.groupId)
    return { error: leader === undefined ? wireError('LEADER_NOT_AVAILABLE', { topic, partition }) : notLeader(topic, partition, leader) }
  }
  return { gid: p.groupId }
}

/** How long a new topic's creation waits for every partition to have a leader. */
const CREATE_LEADERS_WAIT_MS = 10_000

function replyError(r: WorkerReply): WireError | null {
  return r.ok ? null : (r.error as WireError)
}

/** Resolves with `fallback` if `p` takes longer than `ms`. */
function within<T>(p: Promise<T>, ms: number, fallback: () => T): Promise<T> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(fallback()), ms)
    void p.then((v) => {
      clearTimeout(timer)
      resolve(v)
    })
  })
}

function controllerError(code: ControllerError | MetadataError, message: string): WireError {
  switch (code) {
    case 'TOPIC_EXISTS':
    case 'UNKNOWN_TOPIC':
    case 'UNKNOWN_PARTITION':
    case 'INVALID_REQUEST':
    case 'INVALID_REPLICATION_FACTOR':
    case 'INVALID_NODE':
      return { code, message }
    case 'CONTROLLER_NOT_AVAILABLE':
      return wireError('CONTROLLER_NOT_AVAILABLE', { reason: message })
    default:
      return proposeError(code, message, { topic: '(metadata)', partition: 0, leader: 0 })
  }
}

/** Partitions of every topic: what maxPartitions caps. */
function partitionCount(ctx: BrokerContext): number {
  let n = 0
  for (const t of ctx.controller.metadata.topics.values()) n += t.partitions.length
  return n
}

/** The nodes clients may connect to: those registered in the metadata (this one at least). */
function nodeList(ctx: BrokerContext): { id: number; host: string; port: number }[] {
  const nodes = new Map(ctx.controller.metadata.nodes)
  if (!nodes.has(ctx.config.nodeId)) {
    const self = ctx.config.advertise ?? ctx.config.listen
    nodes.set(ctx.config.nodeId, { id: ctx.config.nodeId, host: self.host, port: self.port })
  }
  return [...nodes.values()].sort((a, b) => a.id - b.id).map((n) => ({ id: n.id, host: n.host, port: n.port }))
}

export const handlers: { readonly [A in ApiName]: Handler<A> } = {
  async hello(ctx, body) {
    const v = negotiateVersion(body.versionMin, body.versionMax, PROTOCOL_VERSION_MIN, PROTOCOL_VERSION_MAX)
    if (!v.ok) return failed({ code: 'UNSUPPORTED_VERSION', message: v.error.message })
    return done<'hello'>({
      version: v.value,
      nodeId: ctx.config.nodeId,
      server: SERVER_NAME,
      limits: {
        frameBytesMax: limits.protocol.frameBytesMax,
        messageBytesMax: limits.produce.messageBytesMax,
        batchBytesMax: limits.produce.batchBytesMax,
      },
    })
  },

  async metadata(ctx, body) {
    const all = ctx.controller.metadata.topics
    const names = body.topics ?? [...all.keys()].sort()
    const topics = names.map((name) => {
      const t = all.get(name)
      if (!t) return { name, error: wireError('UNKNOWN_TOPIC', { topic: name }), partitions: [] }
      return {
        name,
        partitions: t.partitions.map((p) => ({ partition: p.partition, leader: ctx.cluster.leaderOf(p.groupId) ?? null, replicas: [...p.replicas], ...(p.target ? { target: [...p.target] } : {}) })),
      }
    })
    return done<'metadata'>({ nodes: nodeList(ctx), topics })
  },

  async createTopic(ctx, body) {
    // the cap is checked before anything is created, so a refused topic leaves no trace
    const hosted = partitionCount(ctx)
    if (hosted + body.partitions > ctx.config.maxPartitions) {
      return failed(wireError('PARTITION_LIMIT', { partitions: hosted + body.partitions, limit: ctx.config.maxPartitions }))
    }
    const r = await ctx.cluster.submit({
      op: 'createTopic',
      name: body.name,
      partitions: body.partitions,
      replicationFactor: body.replicationFactor,
      config: { retentionMs: body.retentionMs ?? null, retentionBytes: body.retentionBytes ?? null },
    })
    if (!r.ok) return failed(controllerError(r.error.code, r.error.message))
    const applied = r.value
    if (!applied.ok) return failed(controllerError(applied.error.code, applied.error.message))
    const topic = (applied.value as { topic: Topic }).topic
    const err = await ctx.openTopic(topic)
    // on a single node nobody else holds the partitions: all or nothing
    if (err !== null && ctx.cluster.single) {
      // all or nothing: a topic whose partitions cannot all serve is taken back
      ctx.log.error({ topic: topic.name, err }, 'topic creation failed: a partition store could not open; rolled back')
      await ctx.cluster.submit({ op: 'deleteTopic', name: topic.name })
      await ctx.closeTopic(topic)
      return failed(/STORE_FULL|STORAGE_FULL|ENOSPC/.test(err) ? wireError('STORAGE_FULL', { reason: err }) : wireError('STORAGE_FAILED', { topic: topic.name, partition: 0, reason: err }))
    }
    if (err !== null) ctx.log.error({ topic: topic.name, err }, 'a replica of the new topic could not open on this node; the others serve it')
    // a topic is writable once its creation is answered (the client may still meet an election)
    if (!(await ctx.cluster.leadersKnown(topic.partitions.map((p) => p.groupId), CREATE_LEADERS_WAIT_MS))) ctx.log.warn({ topic: topic.name, waitedMs: CREATE_LEADERS_WAIT_MS }, 'created, but not every partition had a leader yet')
    ctx.log.info({ topic: topic.name, partitions: topic.partitions.length, replicationFactor: body.replicationFactor }, 'topic created')
    return done<'createTopic'>({ name: topic.name, partitions: topic.partitions.length })
  },

  async alterTopic(ctx, body) {
    const t = ctx.controller.metadata.topics.get(body.name)
    if (!t) return failed(wireError('UNKNOWN_TOPIC', { topic: body.name }))
    const now = t.partitions.length
    if (body.partitions !== undefined && body.partitions < now) {
      return failed(wireError('INVALID_CONFIG', { reason: `topic ${body.name} has ${now} partitions, and partitions are never removed: it cannot have ${body.partitions}` }))
    }
    const adding = (body.partitions ?? now) - now
    if (adding > 0) {
      const hosted = partitionCount(ctx)
      if (hosted + adding > ctx.config.maxPartitions) return failed(wireError('PARTITION_LIMIT', { partitions: hosted + adding, limit: ctx.config.maxPartitions }))
    }
    const retention = body.retentionMs !== undefined || body.retentionBytes !== undefined
    const config = { retentionMs: body.retentionMs === undefined ? t.config.retentionMs : body.retentionMs, retentionBytes: body.retentionBytes === undefined ? t.config.retentionBytes : body.retentionBytes }
    let topic: Topic = t
    if (retention || adding > 0) {
      const r = await ctx.cluster.submit({ op: 'alterTopic', name: body.name, ...(retention ? { config } : {}), ...(adding > 0 ? { partitions: now + adding } : {}) })
      if (!r.ok) return failed(controllerError(r.error.code, r.error.message))
      if (!r.value.ok) return failed(controllerError(r.value.error.code, r.value.error.message))
      topic = (r.value.value as { topic: Topic }).topic
      const err = await ctx.openTopic(topic)
      if (err !== null) ctx.log.error({ topic: topic.name, err }, 'a replica of an added partition could not open on this node; the others serve it')
      const added = topic.partitions.slice(now).map((p) => p.groupId)
      if (added.length > 0 && !(await ctx.cluster.leadersKnown(added, CREATE_LEADERS_WAIT_MS))) ctx.log.warn({ topic: topic.name, waitedMs: CREATE_LEADERS_WAIT_MS }, 'partitions added, but not every one had a leader yet')
      ctx.log.info({ topic: topic.name, partitions: topic.partitions.length, retentionMs: topic.config.retentionMs, retentionBytes: topic.config.retentionBytes }, 'topic altered')
    }
    return done<'alterTopic'>({ name: topic.name, partitions: topic.partitions.length, retentionMs: topic.config.retentionMs, retentionBytes: topic.config.retentionBytes })
  },

  async deleteTopic(ctx, body) {
    const r = await ctx.cluster.submit({ op: 'deleteTopic', name: body.name })
    if (!r.ok) return failed(controllerError(r.error.code, r.error.message))
    if (!r.value.ok) return failed(controllerError(r.value.error.code, r.value.error.message))
    await ctx.closeTopic((r.value.value as { deleted: Topic }).deleted)
    ctx.log.info({ topic: body.name }, 'topic deleted')
    return done<'deleteTopic'>({})
  },

  async listTopics(ctx) {
    const topics = [...ctx.controller.metadata.topics.values()].map((t) => ({ name: t.name, partitions: t.partitions.length }))
    topics.sort((a, b) => a.name.localeCompare(b.name))
    return done<'listTopics'>({ topics })
  },

  async describeTopic(ctx, body) {
    const t = ctx.controller.metadata.topics.get(body.name)
    if (!t) return failed(wireError('UNKNOWN_TOPIC', { topic: body.name }))
    const partitions = await Promise.all(
      t.partitions.map(async (p) => {
        const r = ctx.groups.hasGroup(p.groupId) ? await ctx.groups.request({ t: 'offsets', gid: p.groupId }) : null
        const offsets = r?.ok && r.t === 'offsets' ? r : { highWatermark: 0, logStartOffset: 0 }
        return { partition: p.partition, leader: ctx.cluster.leaderOf(p.groupId) ?? null, logStartOffset: offsets.logStartOffset, highWatermark: offsets.highWatermark }
      }),
    )
    return done<'describeTopic'>({ name: t.name, partitions, retentionMs: t.config.retentionMs, retentionBytes: t.config.retentionBytes })
  },

  async initProducerId(ctx) {
    const r = await ctx.cluster.submit({ op: 'allocateProducerId' })
    if (!r.ok) return failed(controllerError(r.error.code, r.error.message))
    if (!r.value.ok) return failed(controllerError(r.value.error.code, r.value.error.message))
    const { producerId, producerEpoch } = r.value.value as { producerId: number; producerEpoch: number }
    return done<'initProducerId'>({ producerId, producerEpoch })
  },

  async produce(ctx, body) {
    ctx.counters.produceRequests++
    const atomic = body.atomic === true
    // partitions fan out to their groups in parallel; each is one proposal
    const partitions = await Promise.all(
      body.partitions.map(async (p) => {
        const where = route(ctx, p.topic, p.partition)
        if ('error' in where) return { topic: p.topic, partition: p.partition, error: where.error }
        // a large compressed batch is verified in the codec pool, not on an actor's thread
        let sizes: number[] | undefined
        if (wantsPool(p.batch)) {
          const v = await ctx.codecs.verify(p.batch)
          if (!v.ok) return { topic: p.topic, partition: p.partition, error: v.error }
          sizes = v.sizes
        }
        const request = { t: 'produce' as const, gid: where.gid, atomic, batch: p.batch, ...(sizes ? { sizes } : {}) }
        const reply = await within(ctx.groups.request(request), body.timeoutMs, () => null)
        if (reply === null) return { topic: p.topic, partition: p.partition, error: wireError('TIMEOUT', { timeoutMs: body.timeoutMs }) }
        const error = replyError(reply)
        if (error) return { topic: p.topic, partition: p.partition, error }
        if (!reply.ok || reply.t !== 'produce') return { topic: p.topic, partition: p.partition, error: wireError('INTERNAL', { reason: `produce answered ${reply.ok ? reply.t : 'an error'}` }) }
        // the worker's error codes are the wire's (partition-replica.ts maps them)
        return { topic: p.topic, partition: p.partition, ...(reply.summary as ProduceSummary) }
      }),
    )
    return done<'produce'>({ partitions })
  },

  async fetch(ctx, body) {
    const maxWaitMs = Math.min(body.maxWaitMs, limits.fetch.maxWaitMsMax)
    const maxBytes = Math.min(body.maxBytes, limits.fetch.responseBytesMax)
    // one round trip: each partition's worker answers at once when it has data and parks
    // the request otherwise (long poll); the first partition with an answer worth sending
    // cancels the others' waits, and a cancelled wait answers at once with what it has
    const asks = body.partitions.map((p) => {
      const where = route(ctx, p.topic, p.partition)
      if ('error' in where) return { reply: Promise.resolve<WorkerReply>({ rid: 0, ok: false, error: where.error }), cancel: () => {} }
      return ctx.groups.cancellable({
        t: 'fetch',
        gid: where.gid,
        offset: p.offset,
        maxBytes: Math.min(p.maxBytes ?? maxBytes, maxBytes),
        maxMessages: p.maxMessages ?? Number.MAX_SAFE_INTEGER,
        maxWaitMs,
      })
    })
    const hasData = (r: WorkerReply): boolean => !r.ok || (r.t === 'fetch' && r.batches.length > 0)
    if (asks.length > 1) for (const a of asks) void a.reply.then((r) => hasData(r) && asks.forEach((other) => other !== a && other.cancel()))
    const replies = await Promise.all(asks.map((a) => a.reply))
    let total = 0
    const partitions = body.partitions.map((p, i) => {
      const r = replies[i]!
      if (!r.ok) {
        // with an error the offsets are -1 when unknown (apis/fetch.ts); OFFSET_OUT_OF_RANGE knows them
        const error = r.error as WireError
        const known = (key: string): number => (typeof error.details?.[key] === 'number' ? (error.details[key] as number) : -1)
        return { topic: p.topic, partition: p.partition, error, highWatermark: known('highWatermark'), logStartOffset: known('logStartOffset'), batches: [] }
      }
      const f = r.t === 'fetch' ? r : { batches: [], highWatermark: 0, logStartOffset: 0 }
      const batches: Uint8Array[] = []
      for (const b of f.batches) {
        // the response as a whole stays under maxBytes, but always carries some data
        if (total > 0 && total + b.byteLength > maxBytes) break
        batches.push(b)
        total += b.byteLength
      }
      return { topic: p.topic, partition: p.partition, highWatermark: f.highWatermark, logStartOffset: f.logStartOffset, batches }
    })
    return done<'fetch'>({ partitions })
  },

  async describeCluster(ctx) {
    const nodes = nodeList(ctx).map((n) => ({ ...n, up: n.id === ctx.config.nodeId || ctx.cluster.isUp(n.id) }))
    const groups = await ctx.groups.status()
    const controller = { leader: ctx.controller.isLeader() ? ctx.config.nodeId : ctx.controller.leader, voters: [...ctx.cluster.controllerVoters] }
    return done<'describeCluster'>({ nodeId: ctx.config.nodeId, nodes, controller, groups })
  },

  async movePartition(ctx, body) {
    const md = ctx.controller.metadata
    const t = md.topics.get(body.topic)
    if (!t) return failed(wireError('UNKNOWN_TOPIC', { topic: body.topic }))
    if (!t.partitions.some((p) => p.partition === body.partition)) return failed(wireError('UNKNOWN_PARTITION', { topic: body.topic, partition: body.partition }))
    const refuse = (reason: string) => failed(wireError('INVALID_REPLICAS', { topic: body.topic, partition: body.partition, replicas: body.replicas.join(','), reason }))
    if (new Set(body.replicas).size !== body.replicas.length) return refuse('a node is named twice')
    const unknown = body.replicas.filter((n) => !md.nodes.has(n))
    if (unknown.length > 0) return refuse(`no such node${unknown.length === 1 ? '' : 's'}: ${unknown.join(', ')} (the cluster has ${[...md.nodes.keys()].sort((a, b) => a - b).join(', ')})`)
    const r = await ctx.cluster.submit({ op: 'movePartition', name: body.topic, partition: body.partition, replicas: body.replicas })
    if (!r.ok) return failed(controllerError(r.error.code, r.error.message))
    if (!r.value.ok) return failed(controllerError(r.value.error.code, r.value.error.message))
    ctx.log.info({ topic: body.topic, partition: body.partition, replicas: body.replicas }, 'partition move recorded')
    return done<'movePartition'>({})
  },

  async addNode(ctx, body) {
    const refuse = (reason: string) => failed(wireError('INVALID_NODE', { action: 'add', nodeId: body.id, reason }))
    if (!ctx.cluster.hasPeers) return refuse('this node was started without --peers: a single node does not grow (start every node with --peers)')
    if (ctx.cluster.startedWith(body.id)) return refuse('it is a member already (listed in --peers)')
    const voters = ctx.cluster.controllerVoters
    if (body.id < Math.max(...voters)) return refuse(`an added node takes an id above the metadata group's voters (${voters.join(', ')})`)
    const r = await ctx.cluster.submit({ op: 'addNode', id: body.id, host: body.host, port: body.port })
    if (!r.ok) return failed(controllerError(r.error.code, r.error.message))
    if (!r.value.ok) return failed(controllerError(r.value.error.code, r.value.error.message))
    ctx.log.info({ peer: body.id, host: body.host, port: body.port }, 'node added to the cluster')
    return done<'addNode'>({})
  },

  async removeNode(ctx, body) {
    if (ctx.cluster.startedWith(body.id)) {
      return failed(wireError('INVALID_NODE', { action: 'remove', nodeId: body.id, reason: 'it was started with --peers: drain it, then restart the others without it in --peers' }))
    }
    const r = await ctx.cluster.submit({ op: 'removeNode', id: body.id })
    if (!r.ok) return failed(controllerError(r.error.code, r.error.message))
    if (!r.value.ok) return failed(r.value.error.code === 'INVALID_NODE' ? wireError('INVALID_NODE', { action: 'remove', nodeId: body.id, reason: r.value.error.message }) : controllerError(r.value.error.code, r.value.error.message))
    ctx.log.info({ peer: body.id }, 'node removed from the cluster')
    return done<'removeNode'>({})
  },

  async electPreferredLeaders(ctx) {
    const started = await ctx.groups.electPreferred()
    if (started > 0) ctx.log.info({ started }, 'handing leadership back to preferred replicas, as asked')
    return done<'electPreferredLeaders'>({ started })
  },

  async listOffsets(ctx, body) {
    const partitions = await Promise.all(
      body.partitions.map(async (p) => {
        const where = route(ctx, p.topic, p.partition)
        if ('error' in where) return { topic: p.topic, partition: p.partition, error: where.error }
        const r = await ctx.groups.request({ t: 'offsets', gid: where.gid })
        if (!r.ok || r.t !== 'offsets') return { topic: p.topic, partition: p.partition, error: r.ok ? wireError('INTERNAL', { reason: 'bad reply' }) : (r.error as WireError) }
        return { topic: p.topic, partition: p.partition, offset: p.spec === 'earliest' ? r.logStartOffset : r.highWatermark }
      }),
    )
    return done<'listOffsets'>({ partitions })
  },
}
