/**
 * Cluster: what this node does as a member of a cluster, on the main thread.
 *
 * - Raft traffic: the workers' buffers for a node (raft-wire.ts) go out on the peer
 *   link's RAFT channel unread; what arrives is decoded once, the metadata group's
 *   messages stepped into the controller here and the rest handed to the workers.
 * - Leaders: every node tells every other which leader each group it hosts has (and as
 *   of which term) whenever that changes, and its whole table when a peer connects, so
 *   any node answers metadata requests with leaders, and routes, for partitions it does
 *   not host (the newest term wins).
 * - Controller requests: metadata commands run on the metadata group's leader. A node
 *   that is not it forwards them there (CONTROL channel, with a deadline) and retries
 *   while a leader is being elected; a new topic's replicas are placed by the leader,
 *   over the nodes it can reach.
 *
 * - Members: the nodes every node was started with (`--peers`), and those added to the
 *   running cluster by the metadata (addNode), whose peer addresses the transport learns
 *   from it (`learnMembers`) on every node. The metadata group's voters are the first
 *   three started with; every other member observes it: its leader sends each observer
 *   its whole state whenever the observer connects, the leader changes, or metadata
 *   applies (metadata-observer.ts).
 *
 * A single node is a cluster of one: no peers, and every command runs here.
 *
 * Imports base, raft (types), controller, replica (wire codecs) and ./ modules.
 */
import { Packr } from 'msgpackr'
import { fail, limits } from '../base/index.js'
import type { Result } from '../base/index.js'
import type { Message } from '../raft/index.js'
import { placeReplicas } from '../controller/index.js'
import type { MetadataResult, NodeRecord, PeerRecord, Topic, TopicConfig } from '../controller/index.js'
import { RaftOutbox, decodeRaftBatch } from '../replica/index.js'
import type { GroupMessage } from '../replica/index.js'
import type { ActorLogger } from '../group/index.js'
import type { MetadataReplica } from './controller.js'
import { CONTROLLER_GROUP_ID } from './controller.js'
import { MetadataObserver } from './metadata-observer.js'

/** What the cluster needs of the node-to-node transport (src/broker/peer). */
export interface PeerSender {
  send(to: number, channel: number, payload: Uint8Array): boolean
  isUp(id: number): boolean
  peersUp(): number[]
  addPeer(id: number, address: { readonly host: string; readonly port: number }): void
  removePeer(id: number): void
}

export const Channel = { RAFT: 1, CONTROL: 2, LEADERS: 3 } as const

/** A metadata command as a node asks for it; the leader turns it into the logged command. */
export type ControllerRequest =
  | { readonly op: 'createTopic'; readonly name: string; readonly partitions: number; readonly replicationFactor: number; readonly config: TopicConfig }
  | { readonly op: 'deleteTopic'; readonly name: string }
  /** `partitions`: the count wanted (more than now: the leader places the added ones). */
  | { readonly op: 'alterTopic'; readonly name: string; readonly config?: TopicConfig; readonly partitions?: number }
  | { readonly op: 'allocateProducerId' }
  | ({ readonly op: 'registerNode' } & NodeRecord)
  | { readonly op: 'movePartition'; readonly name: string; readonly partition: number; readonly replicas: readonly number[] }
  | { readonly op: 'partitionConf'; readonly groupId: number; readonly confIndex: number; readonly voters: readonly number[] }
  | ({ readonly op: 'addNode' } & PeerRecord)
  | { readonly op: 'removeNode'; readonly id: number }

export type ControllerError = 'CONTROLLER_NOT_AVAILABLE' | 'INVALID_REPLICATION_FACTOR' | 'STORAGE_FULL' | 'STORAGE_FAILED' | 'SHUTTING_DOWN' | 'INTERNAL'

type ControlMessage =
  | { readonly k: 'req'; readonly id: number; readonly req: ControllerRequest }
  | { readonly k: 'res'; readonly id: number; readonly r: Result<MetadataResult, ControllerError | 'NOT_LEADER'> }
  /** The metadata group's leader to an observer: its whole state (MetadataStateMachine.snapshot). */
  | { readonly k: 'meta'; readonly state: Uint8Array }
  /** An observer that has no state yet asks for one. */
  | { readonly k: 'metaReq' }

export interface LeaderInfo {
  readonly leader: number
  readonly term: number
}

const packr = new Packr({ useRecords: false, moreTypes: false })
/** Pause between tries of a controller request while the metadata group elects a leader. */
const RETRY_MS = 50
/** Metadata changes applied within this long reach observers as one state. */
const OBSERVER_PUSH_MS = 10

export class Cluster {
  readonly nodeId: number
  /** The members every node was started with (`--peers`), this node's included (just this one for a single node). */
  readonly #started: readonly number[]
  /** The members added to the running cluster, as the metadata last said. */
  #added = new Map<number, PeerRecord>()
  #members: readonly number[] = []
  #observers: readonly number[] = []
  /** Voters of the metadata group: the first members started with, by id, up to three. */
  readonly controllerVoters: readonly number[]
  readonly #link: PeerSender | null
  readonly #log: ActorLogger
  #controller: MetadataReplica | null = null
  #observerPush: NodeJS.Timeout | null = null
  #deliver: (items: GroupMessage[]) => void = () => {}
  /** reportConf: the newest configuration per group not yet sent, and the groups with one being sent. */
  readonly #confWaiting = new Map<number, { index: number; voters: readonly number[] }>()
  readonly #confSending = new Set<number>()
  #peerDown: (id: number) => void = () => {}
  readonly #leaders = new Map<number, LeaderInfo>()
  /** Leader changes of groups hosted here, told to every peer with the next flush. */
  #changed = new Map<number, LeaderInfo>()
  readonly #controllerOut = new RaftOutbox()
  #flushScheduled = false
  readonly #waiting = new Map<number, { resolve: (r: Result<MetadataResult, ControllerError | 'NOT_LEADER'>) => void; timer: NodeJS.Timeout }>()
  #nextId = 1
  #closed = false
  /** Looked at whenever a group's leader changes (those waiting for leaders). */
  readonly #leaderWatchers = new Set<() => void>()

  constructor(opts: { nodeId: number; members: readonly number[]; link: PeerSender | null; log: ActorLogger }) {
    this.nodeId = opts.nodeId
    this.#started = opts.members.length > 0 ? [...opts.members].sort((a, b) => a - b) : [opts.nodeId]
    this.controllerVoters = this.#started.slice(0, limits.cluster.controllerVotersMax)
    this.#derive()
    this.#link = opts.link
    this.#log = opts.log
  }

  /** Whether the peer link to node `id` is up. */
  isUp(id: number): boolean {
    return this.#link?.isUp(id) ?? false
  }

  /** A node on its own (its member list is just itself, as long as no node was added). */
  get single(): boolean {
    return this.members.length === 1
  }

  /** Whether this node has a peer transport (started with `--peers`): only such a node's cluster can grow. */
  get hasPeers(): boolean {
    return this.#link !== null
  }

  /** Every member id, this node's included, ascending (recomputed only when the members change). */
  get members(): readonly number[] {
    return this.#members
  }

  /** Whether node `id` was listed in `--peers` at start (not added to the running cluster). */
  startedWith(id: number): boolean {
    return this.#started.includes(id)
  }

  /** Members that observe the metadata group rather than vote in it. */
  get observers(): readonly number[] {
    return this.#observers
  }

  /**
   * The metadata's added members (addNode, removeNode), as applied: the transport dials
   * new ones and forgets removed ones (a node's own id is never its peer). Called on every
   * node after each applied metadata change.
   */
  learnMembers(added: ReadonlyMap<number, PeerRecord>): void {
    if (this.#link === null) return
    for (const [id, p] of added) {
      if (id === this.nodeId || this.#started.includes(id)) continue
      const known = this.#added.get(id)
      if (known === undefined || known.host !== p.host || known.port !== p.port) this.#link.addPeer(id, { host: p.host, port: p.port })
    }
    for (const id of this.#added.keys()) {
      if (!added.has(id) && id !== this.nodeId && !this.#started.includes(id)) this.#link.removePeer(id)
    }
    this.#added = new Map(added)
    this.#derive()
  }

  #derive(): void {
    this.#members = [...new Set([...this.#started, ...this.#added.keys()])].sort((a, b) => a - b)
    this.#observers = this.#members.filter((id) => !this.controllerVoters.includes(id))
  }

  /**
   * The metadata changed here: if this node leads the metadata group, every observer that
   * is up gets the new state (changes close together share one send).
   */
  metadataApplied(): void {
    if (this.#observerPush !== null || this.#link === null || !this.#controller?.isLeader()) return
    this.#observerPush = setTimeout(() => {
      this.#observerPush = null
      this.#pushMetadata(this.observers)
    }, OBSERVER_PUSH_MS)
    this.#observerPush.unref()
  }

  #pushMetadata(to: readonly number[]): void {
    const c = this.#controller
    if (this.#closed || this.#link === null || c === null || !c.isLeader()) return
    const up = to.filter((id) => id !== this.nodeId && this.#link!.isUp(id))
    if (up.length === 0) return
    const msg: ControlMessage = { k: 'meta', state: c.metadata.snapshot() }
    const payload = packr.pack(msg)
    for (const id of up) this.#link.send(id, Channel.CONTROL, payload)
  }

  /** Wires this node's metadata (the metadata group's messages in; an observer's states in). */
  attachMetadata(controller: MetadataReplica): void {
    this.#controller = controller
  }

  /** An observer that holds no metadata yet asks the voters it reaches; their leader answers with its state. */
  askForMetadata(): void {
    const msg: ControlMessage = { k: 'metaReq' }
    const payload = packr.pack(msg)
    for (const id of this.controllerVoters) if (id !== this.nodeId && this.#link?.isUp(id)) this.#link.send(id, Channel.CONTROL, payload)
  }

  /** Wires the workers (everyone else's messages, and peers lost). */
  attach(deliver: (items: GroupMessage[]) => void, peerDown: (id: number) => void = () => {}): void {
    this.#deliver = deliver
    this.#peerDown = peerDown
  }

  /**
   * The peer transport lost node `id` (its connection closed, or it was silent past the
   * idle timeout): every group here that depends on it is told, so a quiet group wakes
   * and a follower of it campaigns at once rather than after an election timeout.
   */
  peerDown(id: number): void {
    this.#controller?.peerDown(id)
    this.#peerDown(id)
  }

  // ---- raft traffic ----------------------------------------------------------------------

  /** A worker's buffer of Raft messages for node `to`. */
  sendRaft(to: number, bytes: Uint8Array): void {
    this.#link?.send(to, Channel.RAFT, bytes)
  }

  /** The metadata group's messages (the controller runs on this thread). */
  sendControllerMessages(msgs: readonly Message[]): void {
    this.#controllerOut.add(CONTROLLER_GROUP_ID, msgs)
    this.#schedule()
  }

  /** What the peer link received. */
  onMessage(from: number, channel: number, payload: Uint8Array): void {
    switch (channel) {
      case Channel.RAFT:
        return this.#onRaft(from, payload)
      case Channel.LEADERS:
        return this.#onLeaders(from, payload)
      case Channel.CONTROL:
        return this.#onControl(from, payload)
      default:
        this.#log.warn({ peer: from, channel }, 'a message on an unknown peer channel; dropped')
    }
  }

  #onRaft(from: number, payload: Uint8Array): void {
    const batch = decodeRaftBatch(payload)
    if (!batch.ok) {
      this.#log.warn({ peer: from, err: batch.error.message }, 'a malformed raft batch from a peer; dropped')
      return
    }
    const rest: GroupMessage[] = []
    for (const item of batch.value) {
      if (item[1].from !== from) {
        this.#log.warn({ peer: from, group: item[0], claimed: item[1].from }, 'a raft message claims another sender; dropped')
        continue
      }
      if (item[0] === CONTROLLER_GROUP_ID) this.#controller?.step(item[1])
      else rest.push(item)
    }
    if (rest.length > 0) this.#deliver(rest)
  }

  // ---- leaders ---------------------------------------------------------------------------

  /** Who leads group `gid`, as far as this node knows (undefined: nobody said). */
  leaderOf(gid: number): number | undefined {
    const l = this.#leaders.get(gid)?.leader
    return l === undefined || l === 0 ? undefined : l
  }

  /** A group hosted here knows its leader now: remembered, and told to every peer. */
  localLeader(gid: number, leader: number, term: number): void {
    if (gid === CONTROLLER_GROUP_ID && leader === this.nodeId) queueMicrotask(() => this.#pushMetadata(this.observers))
    if (this.#learn(gid, { leader, term })) {
      this.#changed.set(gid, { leader, term })
      this.#schedule()
    }
  }

  /** Resolves once every group of `gids` has a leader this node knows of (true), or after `ms` (false). */
  leadersKnown(gids: readonly number[], ms: number): Promise<boolean> {
    const all = (): boolean => gids.every((g) => this.leaderOf(g) !== undefined)
    if (all()) return Promise.resolve(true)
    return new Promise((resolve) => {
      const finish = (v: boolean): void => {
        clearTimeout(timer)
        this.#leaderWatchers.delete(watch)
        resolve(v)
      }
      const watch = (): void => {
        if (all()) finish(true)
      }
      const timer = setTimeout(() => finish(false), ms)
      this.#leaderWatchers.add(watch)
    })
  }

  /** Forgets a group (its topic is gone). */
  forget(gid: number): void {
    this.#leaders.delete(gid)
  }

  /**
   * A replica here applied a configuration of its group (partition-move.ts): the
   * controller records it. One report per group in flight; a newer one waiting replaces
   * an older. A report that fails is dropped: the group's leader reports again while the
   * metadata still shows the move.
   */
  reportConf(gid: number, index: number, voters: readonly number[]): void {
    const waiting = this.#confWaiting.get(gid)
    if (waiting !== undefined && waiting.index >= index) return
    this.#confWaiting.set(gid, { index, voters })
    if (this.#confSending.has(gid)) return
    this.#confSending.add(gid)
    void (async () => {
      for (let next = this.#confWaiting.get(gid); next !== undefined && !this.#closed; next = this.#confWaiting.get(gid)) {
        this.#confWaiting.delete(gid)
        const r = await this.submit({ op: 'partitionConf', groupId: gid, confIndex: next.index, voters: next.voters })
        if (!r.ok) this.#log.warn({ group: gid, index: next.index, voters: next.voters, err: `${r.error.code}: ${r.error.message}` }, 'could not record a partition configuration change with the controller; its leader reports it again')
      }
      this.#confSending.delete(gid)
    })()
  }

  #learn(gid: number, info: LeaderInfo): boolean {
    const known = this.#leaders.get(gid)
    if (known && (known.term > info.term || (known.term === info.term && (known.leader === info.leader || info.leader === 0)))) return false
    this.#leaders.set(gid, info)
    for (const w of this.#leaderWatchers) w()
    return true
  }

  /** A peer connected: it gets every leader this node knows. */
  peerUp(id: number): void {
    if (this.observers.includes(id)) this.#pushMetadata([id])
    if (this.#leaders.size === 0) return
    this.#link?.send(id, Channel.LEADERS, packr.pack([...this.#leaders].map(([g, l]) => [g, l.leader, l.term])))
  }

  #onLeaders(from: number, payload: Uint8Array): void {
    let list: unknown
    try {
      list = packr.unpack(payload)
    } catch {
      list = null
    }
    if (!Array.isArray(list)) {
      this.#log.warn({ peer: from }, 'a malformed leader list from a peer; dropped')
      return
    }
    for (const item of list) {
      if (!Array.isArray(item) || item.length !== 3 || !item.every((v) => Number.isSafeInteger(v) && v >= 0)) continue
      this.#learn(item[0] as number, { leader: item[1] as number, term: item[2] as number })
    }
  }

  #schedule(): void {
    if (this.#flushScheduled) return
    this.#flushScheduled = true
    queueMicrotask(() => this.#flush())
  }

  #flush(): void {
    this.#flushScheduled = false
    if (this.#closed || this.#link === null) return
    const link = this.#link
    this.#controllerOut.drain((to, bytes) => link.send(to, Channel.RAFT, bytes))
    if (this.#changed.size > 0) {
      const payload = packr.pack([...this.#changed].map(([g, l]) => [g, l.leader, l.term]))
      this.#changed = new Map()
      for (const id of this.#link.peersUp()) this.#link.send(id, Channel.LEADERS, payload)
    }
  }

  // ---- controller requests ---------------------------------------------------------------

  /** Runs `req` on the metadata group's leader, wherever it is; retries while there is none, up to the deadline. */
  async submit(req: ControllerRequest, timeoutMs: number = limits.cluster.controllerRequestMs): Promise<Result<MetadataResult, ControllerError>> {
    const until = Date.now() + timeoutMs
    let why = 'no leader was elected'
    while (!this.#closed) {
      const c = this.#controller
      if (c === null) return fail('INTERNAL', 'the controller is not open')
      const leader = c.isLeader() ? this.nodeId : c.leader
      const left = until - Date.now()
      let r: Result<MetadataResult, ControllerError | 'NOT_LEADER'> | null = null
      if (leader === this.nodeId) r = await this.#runHere(req)
      else if (leader !== 0 && this.#link?.isUp(leader)) r = await this.#forward(leader, req, Math.max(1, left))
      else why = leader === 0 ? 'no leader was elected' : `its leader, node ${leader}, is not reachable`
      if (r !== null) {
        if (r.ok || r.error.code !== 'NOT_LEADER') return r as Result<MetadataResult, ControllerError>
        why = r.error.message
      }
      if (Date.now() + RETRY_MS > until) break
      await new Promise((resolve) => setTimeout(resolve, RETRY_MS))
    }
    if (this.#closed) return fail('SHUTTING_DOWN', 'the node is shutting down')
    return fail('CONTROLLER_NOT_AVAILABLE', `no answer within ${timeoutMs} ms: ${why}`)
  }

  /** On the leader: the logged command for `req`, committed and applied. */
  async #runHere(req: ControllerRequest): Promise<Result<MetadataResult, ControllerError | 'NOT_LEADER'>> {
    const c = this.#controller!
    let cmd
    const place = (partitions: number, replicationFactor: number): ReturnType<typeof placeReplicas> => {
      const live = [this.nodeId, ...(this.#link?.peersUp() ?? [])].filter((n) => this.members.includes(n))
      const existing = [...c.metadata.topics.values()].flatMap((t: Topic) => t.partitions.map((p) => p.replicas))
      return placeReplicas({ live, existing, partitions, replicationFactor })
    }
    if (req.op === 'createTopic') {
      const placed = place(req.partitions, req.replicationFactor)
      if (!placed.ok) return placed
      cmd = { op: 'createTopic' as const, name: req.name, partitions: req.partitions, replicas: placed.value[0]!, assignments: placed.value, config: req.config }
    } else if (req.op === 'alterTopic') {
      const topic = c.metadata.topics.get(req.name)
      const adding = topic === undefined || req.partitions === undefined ? 0 : req.partitions - topic.partitions.length
      let assignments: number[][] = []
      if (adding > 0) {
        // the topic's replication factor: its first partition's, as placed or moved
        const placed = place(adding, topic!.partitions[0]!.replicas.length)
        if (!placed.ok) return placed
        assignments = placed.value
      }
      cmd = { op: 'alterTopic' as const, name: req.name, ...(req.config ? { config: req.config } : {}), ...(assignments.length > 0 ? { assignments } : {}) }
    } else {
      cmd = req
    }
    const r = await c.submit(cmd)
    if (r.ok) return r
    switch (r.error.code) {
      case 'NOT_LEADER':
      case 'PROPOSAL_DROPPED':
      case 'TRANSFER_IN_PROGRESS':
        return fail('NOT_LEADER', r.error.message)
      case 'STOPPED':
        return fail('SHUTTING_DOWN', r.error.message)
      case 'STORAGE_FULL':
      case 'STORAGE_FAILED':
        return fail(r.error.code, r.error.message)
      default:
        return fail('INTERNAL', `${r.error.code}: ${r.error.message}`)
    }
  }

  #forward(to: number, req: ControllerRequest, timeoutMs: number): Promise<Result<MetadataResult, ControllerError | 'NOT_LEADER'>> {
    const id = this.#nextId++
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(id)
        resolve(fail('CONTROLLER_NOT_AVAILABLE', `node ${to} did not answer within ${timeoutMs} ms`))
      }, timeoutMs)
      this.#waiting.set(id, { resolve, timer })
      const msg: ControlMessage = { k: 'req', id, req }
      if (!this.#link!.send(to, Channel.CONTROL, packr.pack(msg))) {
        clearTimeout(timer)
        this.#waiting.delete(id)
        resolve(fail('NOT_LEADER', `node ${to} is not reachable`))
      }
    })
  }

  #onControl(from: number, payload: Uint8Array): void {
    let msg: ControlMessage
    try {
      msg = packr.unpack(payload) as ControlMessage
    } catch {
      this.#log.warn({ peer: from }, 'a malformed controller message from a peer; dropped')
      return
    }
    if (msg?.k === 'metaReq') {
      if (this.observers.includes(from)) this.#pushMetadata([from])
      return
    }
    if (msg?.k === 'meta') {
      const c = this.#controller
      if (c instanceof MetadataObserver && msg.state instanceof Uint8Array) c.install(from, msg.state)
      else this.#log.warn({ peer: from }, c instanceof MetadataObserver ? 'a malformed metadata state from a peer; dropped' : 'metadata state sent to a voter of the metadata group; dropped')
      return
    }
    if (msg?.k === 'res' && Number.isSafeInteger(msg.id)) {
      const w = this.#waiting.get(msg.id)
      if (!w) return
      this.#waiting.delete(msg.id)
      clearTimeout(w.timer)
      w.resolve(msg.r)
      return
    }
    if (msg?.k !== 'req' || !Number.isSafeInteger(msg.id) || !validRequest(msg.req)) {
      this.#log.warn({ peer: from }, 'a malformed controller request from a peer; dropped')
      return
    }
    const c = this.#controller
    const answer = async (): Promise<Result<MetadataResult, ControllerError | 'NOT_LEADER'>> =>
      c?.isLeader() ? this.#runHere(msg.req) : fail('NOT_LEADER', `node ${this.nodeId} does not lead the metadata group`)
    void answer().then((r) => {
      const res: ControlMessage = { k: 'res', id: msg.id, r }
      this.#link?.send(from, Channel.CONTROL, packr.pack(res))
    })
  }

  close(): void {
    this.#closed = true
    if (this.#observerPush !== null) clearTimeout(this.#observerPush)
    for (const [id, w] of this.#waiting) {
      clearTimeout(w.timer)
      w.resolve(fail('SHUTTING_DOWN', 'the node is shutting down'))
      this.#waiting.delete(id)
    }
  }
}

const isName = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 255
const isCount = (v: unknown, max: number): boolean => Number.isSafeInteger(v) && (v as number) >= 1 && (v as number) <= max
const isLimit = (v: unknown): boolean => v === null || (Number.isSafeInteger(v) && (v as number) >= 0)

/** A forwarded request has the shape a node's handler would have built (peers are nodes of this cluster, but bytes are bytes). */
function isNodeList(v: unknown): v is number[] {
  return Array.isArray(v) && v.length >= 1 && v.length <= limits.cluster.nodesMax && v.every((n) => isCount(n, 2 ** 31 - 1))
}

function validRequest(r: unknown): r is ControllerRequest {
  if (r === null || typeof r !== 'object') return false
  const q = r as Record<string, unknown>
  switch (q.op) {
    case 'createTopic': {
      const c = q.config as Record<string, unknown> | null
      return isName(q.name) && isCount(q.partitions, 100_000) && isCount(q.replicationFactor, 5) && c !== null && typeof c === 'object' && isLimit(c.retentionMs) && isLimit(c.retentionBytes)
    }
    case 'deleteTopic':
      return isName(q.name)
    case 'alterTopic': {
      const c = q.config as Record<string, unknown> | null | undefined
      const configOk = c === undefined || (c !== null && typeof c === 'object' && isLimit(c.retentionMs) && isLimit(c.retentionBytes))
      return isName(q.name) && configOk && (q.partitions === undefined || isCount(q.partitions, 100_000))
    }
    case 'allocateProducerId':
      return true
    case 'registerNode':
      return isCount(q.id, 2 ** 31 - 1) && typeof q.host === 'string' && q.host.length > 0 && isCount(q.port, 0xffff)
    case 'movePartition':
      return isName(q.name) && Number.isSafeInteger(q.partition) && (q.partition as number) >= 0 && isNodeList(q.replicas)
    case 'addNode':
      return isCount(q.id, 2 ** 31 - 1) && typeof q.host === 'string' && q.host.length > 0 && isCount(q.port, 0xffff)
    case 'removeNode':
      return isCount(q.id, 2 ** 31 - 1)
    case 'partitionConf':
      return Number.isSafeInteger(q.groupId) && (q.groupId as number) > 0 && Number.isSafeInteger(q.confIndex) && (q.confIndex as number) >= 0 && isNodeList(q.voters)
    default:
      return false
  }
}

