/**
 * The node's configuration: every setting, its default, its environment variable and
 * its check, in one table. Values come from (highest first) command-line flags,
 * RAFTMQ_* environment variables, a JSON config file, then the defaults; the CLI feeds
 * them in and `resolveConfig` validates the merged result into a typed config or a
 * list of clear errors.
 *
 * Imports base and node:os only.
 */
import { availableParallelism } from 'node:os'
import { fail, limits, ok } from '../base/index.js'
import type { Result } from '../base/index.js'

export interface HostPort {
  readonly host: string
  readonly port: number
}

/** A member of the cluster: its id and where its peers reach it. */
export interface Member {
  readonly id: number
  readonly peer: HostPort
}

export interface BrokerConfig {
  readonly nodeId: number
  readonly dataDir: string
  readonly listen: HostPort
  /** Where clients are told to connect to this node (default: `listen`). */
  readonly advertise: HostPort | null
  /** Where other nodes connect for Raft traffic (null: a single node, no peers). */
  readonly peerListen: HostPort | null
  /** Every node of the cluster, this one included, sorted by id (empty: a single node). */
  readonly peers: readonly Member[]
  /** Nodes of different clusters refuse each other's connections. */
  readonly clusterId: string
  /** Worker threads hosting partition groups (groups beyond it share workers). */
  readonly workers: number
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'
  /** Wall-clock length of one Raft tick. */
  readonly tickMs: number
  /** Space kept in reserve for starting on a full disk, MiB. */
  readonly ballastMb: number
  /** Partitions this node may host. */
  readonly maxPartitions: number
  /** Pre-allocated size of one write-ahead log segment, MiB. */
  readonly walSegmentMb: number
  /** Applied entries a replicated partition's log view keeps for lagging followers (0: the default, 1,000,000 within 64 MiB). */
  readonly viewEntriesMax: number
  /** Ticks without a leader before an election (heartbeats go every tick). */
  readonly electionTicks: number
  /** How long a shutdown waits for requests in flight before closing anyway. */
  readonly shutdownTimeoutMs: number
  /** How often partition leaders apply their topic's retention. */
  readonly retentionCheckMs: number
  /** An idempotent producer silent this long is forgotten by every partition (Kafka's producer.id.expiration.ms). */
  readonly producerExpiryMs: number
}

export interface Setting {
  readonly key: keyof BrokerConfig
  readonly flag: string
  readonly env: string
  readonly help: string
  readonly default: string
}

export const settings: readonly Setting[] = [
  { key: 'nodeId', flag: '--node-id <id>', env: 'RAFTMQ_NODE_ID', help: 'this node\'s id (a positive integer)', default: '1' },
  { key: 'dataDir', flag: '--data-dir <dir>', env: 'RAFTMQ_DATA_DIR', help: 'where the node keeps its data', default: './data' },
  { key: 'listen', flag: '--listen <host:port>', env: 'RAFTMQ_LISTEN', help: 'address for client connections', default: '127.0.0.1:7070' },
  { key: 'advertise', flag: '--advertise <host:port>', env: 'RAFTMQ_ADVERTISE', help: 'address clients are told to use for this node (default: --listen)', default: '' },
  { key: 'peerListen', flag: '--peer-listen <host:port>', env: 'RAFTMQ_PEER_LISTEN', help: 'address for other nodes\' Raft traffic (default: this node\'s entry in --peers)', default: '' },
  {
    key: 'peers',
    flag: '--peers <list>',
    env: 'RAFTMQ_PEERS',
    help: 'every node of the cluster, this one included: id@host:port of each one\'s peer address, comma-separated (empty: a single node)',
    default: '',
  },
  { key: 'clusterId', flag: '--cluster-id <name>', env: 'RAFTMQ_CLUSTER_ID', help: 'the cluster\'s name; nodes of another cluster are refused', default: 'raftmq' },
  { key: 'workers', flag: '--workers <n>', env: 'RAFTMQ_WORKERS', help: 'worker threads for partition groups (0: on the main thread, for the lowest latency)', default: String(availableParallelism()) },
  { key: 'logLevel', flag: '--log-level <level>', env: 'RAFTMQ_LOG_LEVEL', help: 'fatal, error, warn, info, debug, trace or silent', default: 'info' },
  { key: 'tickMs', flag: '--tick-ms <ms>', env: 'RAFTMQ_TICK_MS', help: 'length of one Raft tick', default: '100' },
  { key: 'electionTicks', flag: '--election-ticks <n>', env: 'RAFTMQ_ELECTION_TICKS', help: 'ticks without a leader before an election', default: '10' },
  { key: 'retentionCheckMs', flag: '--retention-check-ms <ms>', env: 'RAFTMQ_RETENTION_CHECK_MS', help: 'how often retention is applied', default: '5000' },
  {
    key: 'producerExpiryMs',
    flag: '--producer-expiry-ms <ms>',
    env: 'RAFTMQ_PRODUCER_EXPIRY_MS',
    help: 'forget an idempotent producer silent this long (its retries older than that may be stored twice)',
    default: '86400000',
  },
  { key: 'maxPartitions', flag: '--max-partitions <n>', env: 'RAFTMQ_MAX_PARTITIONS', help: 'partitions this node may host; a topic creation past it is refused before anything is created', default: '10000' },
  { key: 'ballastMb', flag: '--ballast-mb <mb>', env: 'RAFTMQ_BALLAST_MB', help: 'space kept in reserve in the data directory, released so a node on a full disk can still start and serve reads (0: none)', default: '64' },
  {
    key: 'walSegmentMb',
    flag: '--wal-segment-mb <mb>',
    env: 'RAFTMQ_WAL_SEGMENT_MB',
    help: 'size of one pre-allocated write-ahead log segment per worker (larger: rarer retirement, more disk held)',
    default: String(limits.storage.walSegmentBytes >> 20),
  },
  {
    key: 'viewEntriesMax',
    flag: '--view-entries-max <n>',
    env: 'RAFTMQ_VIEW_ENTRIES_MAX',
    help: 'applied entries a replicated partition keeps in memory for followers that fall behind; one further behind catches up by snapshot (0: 1,000,000 within 64 MiB; small values are for tests)',
    default: '0',
  },
  { key: 'shutdownTimeoutMs', flag: '--shutdown-timeout-ms <ms>', env: 'RAFTMQ_SHUTDOWN_TIMEOUT_MS', help: 'how long shutdown waits for requests in flight', default: '10000' },
]

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

/** Raw values by key, as strings (flags, env) or JSON values (config file). */
export type RawConfig = Partial<Record<keyof BrokerConfig, unknown>>

export function resolveConfig(raw: RawConfig): Result<BrokerConfig, 'INVALID_CONFIG'> {
  const errors: string[] = []
  const get = (key: keyof BrokerConfig): string => {
    const v = raw[key] ?? settings.find((s) => s.key === key)!.default
    return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : JSON.stringify(v)
  }
  const int = (key: keyof BrokerConfig, min: number, max: number): number => {
    const s = get(key)
    const n = Number(s)
    if (!Number.isSafeInteger(n) || n < min || n > max) errors.push(`${key} must be an integer from ${min} to ${max}, got ${s}`)
    return n
  }
  const nodeId = int('nodeId', 1, 2 ** 31 - 1)
  const workers = int('workers', 0, 1024)
  const tickMs = int('tickMs', 1, 60_000)
  const electionTicks = int('electionTicks', 2, 10_000)
  const shutdownTimeoutMs = int('shutdownTimeoutMs', 0, 3_600_000)
  const retentionCheckMs = int('retentionCheckMs', 10, 86_400_000)
  const producerExpiryMs = int('producerExpiryMs', 1_000, 365 * 86_400_000)
  const walSegmentMb = int('walSegmentMb', 1, 4096)
  const viewEntriesMax = int('viewEntriesMax', 0, Number.MAX_SAFE_INTEGER)
  if (viewEntriesMax === 1) errors.push('viewEntriesMax must be 0 (the default) or at least 2')
  const maxPartitions = int('maxPartitions', 1, 1_000_000)
  const ballastMb = int('ballastMb', 0, 65_536)
  const listen = parseHostPort(get('listen'))
  if (!listen.ok) errors.push(`listen: ${listen.error.message}`)
  const optionalHostPort = (key: 'advertise' | 'peerListen'): HostPort | null => {
    const v = get(key)
    if (v === '') return null
    const hp = parseHostPort(v)
    if (hp.ok) return hp.value
    errors.push(`${key}: ${hp.error.message}`)
    return null
  }
  const advertise = optionalHostPort('advertise')
  let peerListen = optionalHostPort('peerListen')
  const peers = parsePeers(get('peers'))
  if (!peers.ok) errors.push(`peers: ${peers.error.message}`)
  const members = peers.ok ? peers.value : []
  if (members.length > 0) {
    const self = members.find((m) => m.id === nodeId)
    if (!self) errors.push(`peers: this node (id ${nodeId}) is not in the list (${members.map((m) => m.id).join(', ')})`)
    peerListen ??= self?.peer ?? null
  } else if (peerListen !== null) {
    errors.push('peerListen needs peers: list every node of the cluster with --peers')
  }
  const clusterId = get('clusterId')
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(clusterId)) errors.push(`clusterId must be 1 to 64 letters, digits, '.', '_' or '-', got ${JSON.stringify(clusterId)}`)
  const logLevel = get('logLevel')
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) errors.push(`logLevel must be one of ${LOG_LEVELS.join(', ')}, got ${logLevel}`)
  const dataDir = get('dataDir')
  if (dataDir.length === 0) errors.push('dataDir must not be empty')
  for (const key of Object.keys(raw)) {
    if (!settings.some((s) => s.key === key)) errors.push(`unknown setting ${key}`)
  }
  if (errors.length > 0 || !listen.ok) return fail('INVALID_CONFIG', errors.join('; '))
  return ok({
    nodeId,
    dataDir,
    listen: listen.value,
    advertise,
    peerListen,
    peers: members,
    clusterId,
    workers,
    logLevel: logLevel as BrokerConfig['logLevel'],
    tickMs,
    electionTicks,
    shutdownTimeoutMs,
    retentionCheckMs,
    producerExpiryMs,
    walSegmentMb,
    viewEntriesMax,
    maxPartitions,
    ballastMb,
  })
}

/** `1@host:port,2@host:port,...`: distinct ids, sorted by id; empty for a single node. */
export function parsePeers(s: string): Result<Member[], 'INVALID_CONFIG'> {
  if (s.trim() === '') return ok([])
  const out: Member[] = []
  for (const part of s.split(',')) {
    const m = /^\s*(\d+)@(\S+)\s*$/.exec(part)
    if (!m) return fail('INVALID_CONFIG', `expected id@host:port, got ${JSON.stringify(part)}`)
    const id = Number(m[1])
    if (!Number.isSafeInteger(id) || id < 1 || id > 2 ** 31 - 1) return fail('INVALID_CONFIG', `node id ${m[1]} must be an integer from 1 to ${2 ** 31 - 1}`)
    const hp = parseHostPort(m[2]!)
    if (!hp.ok) return fail('INVALID_CONFIG', `node ${id}: ${hp.error.message}`)
    if (out.some((o) => o.id === id)) return fail('INVALID_CONFIG', `node ${id} is listed twice`)
    out.push({ id, peer: hp.value })
  }
  if (out.length > limits.cluster.nodesMax) return fail('INVALID_CONFIG', `${out.length} nodes listed, at most ${limits.cluster.nodesMax}`)
  return ok(out.sort((a, b) => a.id - b.id))
}

export function parseHostPort(s: string): Result<HostPort, 'INVALID_CONFIG'> {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:\s]+):(\d{1,5})$/.exec(s)
  if (!m) return fail('INVALID_CONFIG', `expected host:port, got ${JSON.stringify(s)}`)
  const port = Number(m[2])
  if (port > 65535) return fail('INVALID_CONFIG', `port ${port} is out of range`)
  const host = m[1]!.startsWith('[') ? m[1]!.slice(1, -1) : m[1]!
  return ok({ host, port })
}
