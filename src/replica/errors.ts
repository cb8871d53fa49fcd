/**
 * The one map from a group's failure codes (the Raft core's, the actor's, the storage
 * engine's) to wire errors, for every group a node hosts: partitions and the controller.
 * A code it does not know is a bug surfacing as INTERNAL with the code named, never a
 * misleading "try again".
 *
 * Imports base and protocol only.
 */
import { limits } from '../base/index.js'
import { wireError } from '../protocol/errors.js'
import type { WireError } from '../protocol/errors.js'

export interface GroupWhere {
  readonly topic: string
  readonly partition: number
  /** The leader the group knows of (0: none). */
  readonly leader: number
}

/** A storage engine failure (WAL_FULL, WAL_IO, STORE_FULL, STORE_FAILED) as the wire's code: a full disk is retriable (STORAGE_FULL), anything else final. */
export function storageFailureCode(code: string): 'STORAGE_FULL' | 'STORAGE_FAILED' {
  return code === 'WAL_FULL' || code === 'STORE_FULL' ? 'STORAGE_FULL' : 'STORAGE_FAILED'
}

export function proposeError(code: string, message: string, where: GroupWhere): WireError {
  const { topic, partition, leader } = where
  switch (code) {
    case 'NOT_LEADER':
    case 'TRANSFER_IN_PROGRESS':
    case 'PROPOSAL_DROPPED':
      return wireError('NOT_LEADER', { topic, partition }, leader ? { leader } : {})
    case 'STOPPED':
      return wireError('SHUTTING_DOWN')
    case 'UNCOMMITTED_LIMIT':
      return wireError('TOO_MANY_REQUESTS', { limit: `${limits.raft.uncommittedBytesMax} uncommitted bytes` })
    case 'STORAGE_FULL':
      return wireError('STORAGE_FULL', { reason: message })
    case 'STORAGE_FAILED':
      return wireError('STORAGE_FAILED', { topic, partition, reason: message })
    default:
      return wireError('INTERNAL', { reason: `${code}: ${message}` })
  }
}
