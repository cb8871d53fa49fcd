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

export interface BrokerConfig {
  readonly nodeId: number
  readonly dataDir: string
  readonly listen: HostPort
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
  const maxPartitions = int('maxPartitions', 1, 1_000_000)
  const ballastMb = int('ballastMb', 0, 65_536)
  const listen = parseHostPort(get('listen'))
  if (!listen.ok) errors.push(`listen: ${listen.error.message}`)
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
    workers,
    logLevel: logLevel as BrokerConfig['logLevel'],
    tickMs,
    electionTicks,
    shutdownTimeoutMs,
    retentionCheckMs,
    producerExpiryMs,
    walSegmentMb,
    maxPartitions,
    ballastMb,
  })
}

export function parseHostPort(s: string): Result<HostPort, 'INVALID_CONFIG'> {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:\s]+):(\d{1,5})$/.exec(s)
  if (!m) return fail('INVALID_CONFIG', `expected host:port, got ${JSON.stringify(s)}`)
  const port = Number(m[2])
  if (port > 65535) return fail('INVALID_CONFIG', `port ${port} is out of range`)
  const host = m[1]!.startsWith('[') ? m[1]!.slice(1, -1) : m[1]!
  return ok({ host, port })
}
