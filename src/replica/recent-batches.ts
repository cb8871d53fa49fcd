/**
 * RecentBatches: a partition's most recently applied record batches, by base offset, in
 * memory. Two jobs: batches whose partition-store write has not landed yet must be served
 * from here (they are pinned until `flushedThrough` passes them), and a tailing consumer
 * reads the newest batches without a LevelDB read. Beyond `bytesMax`, the oldest written
 * batches leave first.
 *
 * Imports nothing.
 */
export class RecentBatches {
  readonly #bytesMax: number
  /** Insertion order is offset order (apply order). */
  readonly #batches = new Map<number, Uint8Array>()
  #bytes = 0
  #flushedThrough = 0

  constructor(bytesMax: number) {
    this.#bytesMax = bytesMax
  }

  get(baseOffset: number): Uint8Array | undefined {
    return this.#batches.get(baseOffset)
  }

  add(baseOffset: number, batch: Uint8Array): void {
    this.#batches.set(baseOffset, batch)
    this.#bytes += batch.length
    this.#evict()
  }

  /** Batches below `offset` (exclusive) are in the store now. */
  flushedThrough(offset: number): void {
    this.#flushedThrough = Math.max(this.#flushedThrough, offset)
    this.#evict()
  }

  /** Retention: batches wholly below the new log start go (one it cuts through stays readable). */
  dropBelow(logStartOffset: number): void {
    let prev: number | null = null
    for (const base of this.#batches.keys()) {
      if (prev !== null) {
        // prev ends where this one begins: wholly below the log start when this one begins at or below it
        if (base > logStartOffset) break
        this.#bytes -= this.#batches.get(prev)!.length
        this.#batches.delete(prev)
      }
      prev = base
    }
  }

  #evict(): void {
    for (const [base, b] of this.#batches) {
      if (this.#bytes <= this.#bytesMax || base >= this.#flushedThrough) return
      this.#batches.delete(base)
      this.#bytes -= b.length
    }
  }
}
