/**
 * FakeCluster: N fake broker nodes on loopback for client tests, until the real cluster
 * exists. Each node is a TCP server on 127.0.0.1 (port 0 at first, the same port on
 * restart) that speaks the real wire protocol — FrameDecoder, parseRequest against the
 * api schemas, encodeMessageFrame for answers — so the client under test runs its real
 * Connection code. What a node answers comes from one leadership table the test controls:
 *
 * - hello (the node's id), metadata (every node, and each partition's leader from the
 *   table), createTopic (leaders round-robin), initProducerId;
 * - produce, fetch and listOffsets for a partition only on its leader; any other node
 *   answers NOT_LEADER, with the leader's id when `hints` is on, and LEADER_NOT_AVAILABLE
 *   when the table says null;
 * - one log per partition shared by all nodes, as if replicated: a batch stored by a
 *   leader that then dies is there on the next leader, which is what makes a retry's
 *   de-duplication observable. Idempotence follows DESIGN §3 from the batch header
 *   (producer id, base sequence, read with src/protocol/record-batch.ts): a batch whose
 *   sequences are already stored is answered `duplicate` with its original offsets, a gap
 *   is OUT_OF_ORDER_SEQUENCE;
 * - fetch long-polls up to maxWaitMs for data, as the broker does.
 *
 * Every request is logged with its node and time. The test can move leaders, make the
 * metadata name another leader than the one that serves (a lagging controller), delay an
 * API's answers, act between storing and answering (`beforeReply`: drop the answer, or
 * kill the node so the answer is lost), kill a node (close its server, destroy its
 * sockets) and restart it on its port.
 */
import { createServer } from 'node:net'
import type { Server, Socket } from 'node:net'
import { PROTOCOL_VERSION_MAX, errorResponse, okResponse, parseRequest, rejectionResponse } from '../../src/protocol/api.js'
import type {
  ApiName,
  FetchPartitionResult,
  ListOffsetsPartitionResult,
  MetadataResponse,
  ProducePartitionResult,
  Request,
  ResponseBody,
} from '../../src/protocol/api.js'
import { encodeMessageFrame } from '../../src/protocol/codec.js'
import { notLeader, wireError } from '../../src/protocol/errors.js'
import type { WireError } from '../../src/protocol/errors.js'
import { FrameDecoder } from '../../src/protocol/frame.js'
import { decodeRecordBatch, readBatchHeader, withBaseOffset } from '../../src/protocol/record-batch.js'

export interface LoggedRequest {
  readonly node: number
  readonly api: ApiName
  readonly body: Request['body']
  readonly atMs: number
}

export interface StoredBatch {
  readonly baseOffset: number
  readonly count: number
  readonly bytes: Uint8Array
}

/** What to do with an answer once the request's effects are applied. */
export type ReplyAction = 'reply' | 'drop' | 'kill'

interface ProducerState {
  nextSequence: number
  /** The last five batches: their first sequence, size and first offset. */
  readonly window: { baseSequence: number; count: number; baseOffset: number }[]
}

interface PartitionLog {
  readonly batches: StoredBatch[]
  next: number
  readonly producers: Map<number, ProducerState>
  readonly waiters: Set<() => void>
}

interface FakeTopic {
  readonly leaders: (number | null)[]
  readonly replicationFactor: number
  readonly logs: PartitionLog[]
}

class FakeNode {
  server: Server | null = null
  readonly sockets = new Set<Socket>()
  port = 0

  constructor(readonly id: number) {}
}

const IDEMPOTENCE_WINDOW = 5

export class FakeCluster {
  readonly log: LoggedRequest[] = []
  /** Whether a node that does not lead a partition names its leader in NOT_LEADER. */
  hints = true
  /** Runs after a request's effects, before its answer leaves. */
  beforeReply: ((node: number, req: Request) => ReplyAction) | null = null
  /** Nodes the metadata does not list (not yet known to the controller), though they serve. */
  readonly unlisted = new Set<number>()
  /** Milliseconds each API's answers wait before leaving. */
  delays: Partial<Record<ApiName, number>> = {}
  readonly #nodes = new Map<number, FakeNode>()
  readonly #topics = new Map<string, FakeTopic>()
  readonly #timers = new Set<NodeJS.Timeout>()
  /** `${partition}@${topic}` -> the leader metadata names instead of the table's. */
  readonly #misreported = new Map<string, number | null>()
  #producerIds = 0
  readonly #t0 = Date.now()

  static async start(nodes: number): Promise<FakeCluster> {
    const c = new FakeCluster()
    for (let id = 1; id <= nodes; id++) {
      const n = new FakeNode(id)
      c.#nodes.set(id, n)
      await c.#listen(n)
    }
    return c
  }

  /** The bootstrap list: every node's host:port. */
  brokers(): string[] {
    return [...this.#nodes.values()].map((n) => `127.0.0.1:${n.port}`)
  }

  /** A topic whose partition i is led by leaders[i] (null: no leader). */
  createTopic(name: string, leaders: readonly (number | null)[], replicationFactor = 1): void {
    this.#topics.set(name, { leaders: [...leaders], replicationFactor, logs: leaders.map(() => ({ batches: [], next: 0, producers: new Map(), waiters: new Set() })) })
  }

  setLeader(topic: string, partition: number, leader: number | null): void {
    this.#topic(topic).leaders[partition] = leader
  }

  /** Makes metadata name `leader` for the partition (undefined: the truth again); who serves is unchanged. */
  misreport(topic: string, partition: number, leader: number | null | undefined): void {
    if (leader === undefined) this.#misreported.delete(`${partition}@${topic}`)
    else this.#misreported.set(`${partition}@${topic}`, leader)
  }

  /** Requests logged, optionally only of one API and node. */
  requests(api?: ApiName, node?: number): LoggedRequest[] {
    return this.log.filter((r) => (api === undefined || r.api === api) && (node === undefined || r.node === node))
  }

  stored(topic: string, partition: number): readonly StoredBatch[] {
    return this.#topic(topic).logs[partition]!.batches
  }

  /** The values stored in a partition, in offset order, as strings. */
  storedValues(topic: string, partition: number): string[] {
    const out: string[] = []
    for (const b of this.stored(topic, partition)) {
      const d = decodeRecordBatch(b.bytes)
      if (!d.ok) throw new Error(d.error.message)
      for (const r of d.value.records) out.push(r.value === null ? '<null>' : Buffer.from(r.value).toString())
    }
    return out
  }

  /** Open client sockets of one node, or of all. */
  openSockets(id?: number): number {
    let n = 0
    for (const node of this.#nodes.values()) if (id === undefined || node.id === id) n += node.sockets.size
    return n
  }

  /** Stops node `id` the hard way: no more accepts, every connection destroyed. */
  async kill(id: number): Promise<void> {
    const n = this.#node(id)
    const server = n.server
    n.server = null
    for (const s of n.sockets) s.destroy()
    n.sockets.clear()
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()))
  }

  /** Starts a killed node again on the port it had. */
  async restart(id: number): Promise<void> {
    const n = this.#node(id)
    if (n.server) return
    await this.#listen(n, n.port)
  }

  async close(): Promise<void> {
    for (const t of this.#timers) clearTimeout(t)
    this.#timers.clear()
    for (const id of this.#nodes.keys()) await this.kill(id)
  }

  #node(id: number): FakeNode {
    const n = this.#nodes.get(id)
    if (!n) throw new Error(`the fake cluster has no node ${id}`)
    return n
  }

  #topic(name: string): FakeTopic {
    const t = this.#topics.get(name)
    if (!t) throw new Error(`the fake cluster has no topic ${name}`)
    return t
  }

  #listen(n: FakeNode, port = 0): Promise<void> {
    const server = createServer((socket) => this.#accept(n, server, socket))
    return new Promise((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject)
        n.server = server
        n.port = (server.address() as { port: number }).port
        resolve()
      })
    })
  }

  #accept(n: FakeNode, server: Server, socket: Socket): void {
    if (n.server !== server) {
      socket.destroy()
      return
    }
    n.sockets.add(socket)
    socket.setNoDelay(true)
    socket.on('close', () => n.sockets.delete(socket))
    socket.on('error', () => {})
    const frames = new FrameDecoder({
      frame: (body) => {
        const parsed = parseRequest(body)
        if (!parsed.ok) {
          this.#write(socket, rejectionResponse(parsed.error))
          return
        }
        void this.#serve(n, socket, parsed.value)
      },
      error: () => socket.destroy(),
    })
    socket.on('data', (chunk: Buffer) => frames.push(chunk))
  }

  async #serve(n: FakeNode, socket: Socket, req: Request): Promise<void> {
    this.log.push({ node: n.id, api: req.api, body: req.body, atMs: Date.now() - this.#t0 })
    const delayMs = this.delays[req.api] ?? 0
    if (delayMs > 0) await this.#sleep(delayMs)
    if (socket.destroyed) return
    const answer = await this.#handle(n.id, req)
    if (socket.destroyed) return
    const action = this.beforeReply?.(n.id, req) ?? 'reply'
    if (action === 'kill') return void (await this.kill(n.id))
    if (action === 'drop') return
    this.#write(socket, 'error' in answer ? errorResponse(req.id, answer.error) : okResponse(req.id, req.api, answer.body))
  }

  #write(socket: Socket, response: object): void {
    const frame = encodeMessageFrame(response)
    if (!frame.ok) throw new Error(frame.error.message)
    if (!socket.destroyed) socket.write(frame.value)
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.#timers.delete(t)
        resolve()
      }, ms)
      this.#timers.add(t)
    })
  }

  async #handle(node: number, req: Request): Promise<{ body: ResponseBody<ApiName> } | { error: WireError }> {
    switch (req.api) {
      case 'hello': {
        const limits = { frameBytesMax: 64 << 20, messageBytesMax: 1 << 20, batchBytesMax: 16 << 20 }
        return { body: { version: Math.min(req.body.versionMax, PROTOCOL_VERSION_MAX), nodeId: node, server: 'fake-cluster', limits } }
      }
      case 'metadata':
        return { body: this.#metadata(req.body.topics) }
      case 'createTopic': {
        const ids = [...this.#nodes.keys()]
        if (this.#topics.has(req.body.name)) return { error: wireError('TOPIC_EXISTS', { topic: req.body.name }) }
        this.createTopic(req.body.name, Array.from({ length: req.body.partitions }, (_, i) => ids[i % ids.length]!), req.body.replicationFactor)
        return { body: { name: req.body.name, partitions: req.body.partitions } }
      }
      case 'initProducerId':
        return { body: { producerId: ++this.#producerIds, producerEpoch: 0 } }
      case 'produce':
        return { body: { partitions: req.body.partitions.map((p) => this.#produce(node, p.topic, p.partition, p.batch)) } }
      case 'listOffsets':
        return {
          body: {
            partitions: req.body.partitions.map((p): ListOffsetsPartitionResult => {
              const refused = this.#refusal(node, p.topic, p.partition)
              if (refused) return { topic: p.topic, partition: p.partition, error: refused }
              return { topic: p.topic, partition: p.partition, offset: p.spec === 'earliest' ? 0 : this.#log(p.topic, p.partition).next }
            }),
          },
        }
      case 'fetch':
        return { body: { partitions: await this.#fetch(node, req.body) } }
      default:
        return { error: wireError('INVALID_REQUEST', { reason: `the fake cluster does not serve ${req.api}` }) }
    }
  }

  #metadata(names: readonly string[] | undefined): MetadataResponse {
    const nodes = [...this.#nodes.values()].filter((n) => !this.unlisted.has(n.id)).map((n) => ({ id: n.id, host: '127.0.0.1', port: n.port }))
    const topics = (names ?? [...this.#topics.keys()]).map((name) => {
      const t = this.#topics.get(name)
      if (!t) return { name, error: wireError('UNKNOWN_TOPIC', { topic: name }), partitions: [] }
      const ids = [...this.#nodes.keys()]
      return {
        name,
        partitions: t.leaders.map((leader, partition) => ({
          partition,
          leader: this.#misreported.has(`${partition}@${name}`) ? this.#misreported.get(`${partition}@${name}`)! : leader,
          replicas: Array.from({ length: t.replicationFactor }, (_, k) => ids[(partition + k) % ids.length]!),
        })),
      }
    })
    return { nodes, topics }
  }

  #log(topic: string, partition: number): PartitionLog {
    return this.#topic(topic).logs[partition]!
  }

  /** Why `node` refuses a request for the partition, or undefined when it leads it. */
  #refusal(node: number, topic: string, partition: number): WireError | undefined {
    const t = this.#topics.get(topic)
    if (!t) return wireError('UNKNOWN_TOPIC', { topic })
    if (partition >= t.leaders.length) return wireError('UNKNOWN_PARTITION', { topic, partition })
    const leader = t.leaders[partition]!
    if (leader === node) return undefined
    if (leader === null) return wireError('LEADER_NOT_AVAILABLE', { topic, partition })
    return notLeader(topic, partition, this.hints ? leader : undefined)
  }

  #produce(node: number, topic: string, partition: number, batch: Uint8Array): ProducePartitionResult {
    const refused = this.#refusal(node, topic, partition)
    if (refused) return { topic, partition, error: refused }
    const h = readBatchHeader(batch)
    if (!h.ok) return { topic, partition, error: wireError('CORRUPT_MESSAGE', { reason: h.error.message }) }
    const { producerId, baseSequence, recordCount: count } = h.value
    const log = this.#log(topic, partition)
    let producer: ProducerState | undefined
    if (producerId >= 0) {
      producer = log.producers.get(producerId) ?? { nextSequence: 0, window: [] }
      const seen = producer.window.find((w) => w.baseSequence === baseSequence && w.count === count)
      if (seen) return { topic, partition, count, baseOffset: seen.baseOffset, duplicate: true }
      if (baseSequence !== producer.nextSequence) {
        return { topic, partition, error: wireError('OUT_OF_ORDER_SEQUENCE', { producerId, sequence: baseSequence, expected: producer.nextSequence }) }
      }
      log.producers.set(producerId, producer)
    }
    const baseOffset = log.next
    log.batches.push({ baseOffset, count, bytes: withBaseOffset(batch, baseOffset) })
    log.next += count
    if (producer) {
      producer.nextSequence = baseSequence + count
      producer.window.push({ baseSequence, count, baseOffset })
      if (producer.window.length > IDEMPOTENCE_WINDOW) producer.window.shift()
    }
    for (const wake of log.waiters) wake()
    return { topic, partition, count, baseOffset }
  }

  async #fetch(node: number, body: Extract<Request, { api: 'fetch' }>['body']): Promise<FetchPartitionResult[]> {
    const answer = (): FetchPartitionResult[] =>
      body.partitions.map((p) => {
        const refused = this.#refusal(node, p.topic, p.partition)
        if (refused) return { topic: p.topic, partition: p.partition, error: refused, highWatermark: -1, logStartOffset: -1, batches: [] }
        const log = this.#log(p.topic, p.partition)
        if (p.offset > log.next) {
          return { topic: p.topic, partition: p.partition, error: wireError('OFFSET_OUT_OF_RANGE', { offset: p.offset, logStartOffset: 0, highWatermark: log.next }), highWatermark: -1, logStartOffset: -1, batches: [] }
        }
        const batches: Uint8Array[] = []
        let bytes = 0
        for (const b of log.batches) {
          if (b.baseOffset + b.count <= p.offset) continue
          if (batches.length > 0 && bytes + b.bytes.length > body.maxBytes) break
          batches.push(b.bytes)
          bytes += b.bytes.length
        }
        return { topic: p.topic, partition: p.partition, highWatermark: log.next, logStartOffset: 0, batches }
      })
    const first = answer()
    if (body.maxWaitMs === 0 || first.some((p) => p.error || p.batches.length > 0)) return first
    // nothing yet: wait for a produce to any of the partitions, or the deadline
    const logs = body.partitions.map((p) => this.#log(p.topic, p.partition))
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(t)
        this.#timers.delete(t)
        for (const l of logs) l.waiters.delete(done)
        resolve()
      }
      const t = setTimeout(done, body.maxWaitMs)
      this.#timers.add(t)
      for (const l of logs) l.waiters.add(done)
    })
    return answer()
  }
}
