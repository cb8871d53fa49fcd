/**
 * The simulated application: a list of proposal ids in apply order, with an
 * order-sensitive hash so that two replicas' states compare in O(1). Entry data is the
 * proposal id as a u32; a snapshot is the whole id list.
 */
import type { Entry } from '../../src/raft/index.js'
import { EntryType } from '../../src/raft/index.js'

export function hashStep(h: number, id: number): number {
  return Math.imul(h ^ id, 0x01000193) >>> 0
}

export const HASH_SEED = 0x811c9dc5

export function encodeId(id: number): Uint8Array {
  const b = new Uint8Array(4)
  new DataView(b.buffer).setUint32(0, id, false)
  return b
}

/** The proposal id an entry carries; 0 for the empty leader entry, negative for a ConfChange. */
export function entryKey(e: Entry): number {
  if (e.type === EntryType.ConfChange) return -(e.data[0]! * 1000 + e.data[4]!)
  if (e.data.byteLength === 0) return 0
  return new DataView(e.data.buffer, e.data.byteOffset, 4).getUint32(0, false)
}

export interface StateMark {
  readonly count: number
  readonly index: number
  readonly hash: number
}

export class SimStateMachine {
  ids: number[] = []
  readonly seen = new Set<number>()
  hash = HASH_SEED
  /** Index of the last entry applied. */
  index = 0

  /** Applies one entry; returns the id applied twice, if any (a bug). */
  apply(e: Entry): number | null {
    this.index = e.index
    const id = entryKey(e)
    if (id <= 0) return null
    if (this.seen.has(id)) return id
    this.seen.add(id)
    this.ids.push(id)
    this.hash = hashStep(this.hash, id)
    return null
  }

  /** Where the state is now, for a later rollback to it. */
  mark(): StateMark {
    return { count: this.ids.length, index: this.index, hash: this.hash }
  }

  /** Back to `m` (what was applied since is undone): a crash struck before those applies happened. */
  rollback(m: StateMark): void {
    for (let k = m.count; k < this.ids.length; k++) this.seen.delete(this.ids[k]!)
    this.ids.length = m.count
    this.index = m.index
    this.hash = m.hash
  }

  encode(): Uint8Array {
    const b = new Uint8Array(4 * this.ids.length)
    const v = new DataView(b.buffer)
    for (let i = 0; i < this.ids.length; i++) v.setUint32(4 * i, this.ids[i]!, false)
    return b
  }

  static decode(index: number, data: Uint8Array): SimStateMachine {
    const sm = new SimStateMachine()
    const v = new DataView(data.buffer, data.byteOffset, data.byteLength)
    for (let i = 0; i < data.byteLength; i += 4) {
      const id = v.getUint32(i, false)
      sm.seen.add(id)
      sm.ids.push(id)
      sm.hash = hashStep(sm.hash, id)
    }
    sm.index = index
    return sm
  }
}
