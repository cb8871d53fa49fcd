/**
 * checkStored: whether record batch bytes are the batch a partition's index says is at
 * their offset — the check every read of stored bytes makes before they are served, and
 * a snapshot receiver makes before it stores what a leader sent.
 *
 * Imports protocol and partition (types).
 */
import { readBatchHeader, verifyBatchCrc } from '../protocol/record-batch.js'
import type { StoredBatch } from '../partition/index.js'

/** Why `bytes` are not the batch `b` describes (null: they are). */
export function checkStored(bytes: Uint8Array, b: StoredBatch): string | null {
  if (bytes.length !== b.bytes) return `${bytes.length} bytes stored, ${b.bytes} expected`
  if (!verifyBatchCrc(bytes)) return 'the record batch fails its CRC-32C'
  const h = readBatchHeader(bytes)
  if (!h.ok) return `the record batch header is unreadable: ${h.error.message}`
  if (h.value.baseOffset !== b.baseOffset) return `the batch says base offset ${h.value.baseOffset}`
  return null
}
