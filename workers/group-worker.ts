/**
 * Worker-thread entry point: wires the thread's data port, a pino logger and comlink to
 * a ReplicaHost (src/replica/replica-host.ts) over this worker's write-ahead log. No
 * logic of its own.
 */
import { parentPort, workerData } from 'node:worker_threads'
import type { MessagePort } from 'node:worker_threads'
import * as Comlink from 'comlink'
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs'
import { pino } from 'pino'
import { ReplicaHost } from '../src/replica/replica-host.js'

interface WorkerData {
  readonly port: MessagePort
  readonly workerIndex: number
  readonly logLevel: string
  readonly nodeId: number
  readonly tickMs: number
  readonly retentionCheckMs: number
  readonly producerExpiryMs: number
  readonly walDir: string
  readonly walSegmentBytes?: number
  readonly openStoresMax?: number
  readonly viewEntriesMax?: number
}

const data = workerData as WorkerData
if (!parentPort) throw new Error('group-worker must run in a worker thread')
const log = pino({ level: data.logLevel, base: { node: data.nodeId, worker: data.workerIndex } })
const host = ReplicaHost.create(data.port as never, log, {
  tickMs: data.tickMs,
  retentionCheckMs: data.retentionCheckMs,
  producerExpiryMs: data.producerExpiryMs,
  seed: data.nodeId * 1000 + data.workerIndex,
  walDir: data.walDir,
  ...(data.walSegmentBytes ? { walSegmentBytes: data.walSegmentBytes } : {}),
  ...(data.openStoresMax ? { openStoresMax: data.openStoresMax } : {}),
  ...(data.viewEntriesMax ? { viewEntriesMax: data.viewEntriesMax } : {}),
})
Comlink.expose(host, nodeEndpoint(parentPort as never))
