/**
 * The WAL's bounds, kept here until they move into src/base/limits.ts (as `limits.wal`).
 * Every one is enforced where data enters: add() asserts the caller's records against
 * them, recovery treats a length beyond them as a bad record rather than an allocation.
 *
 * Imports nothing.
 */
export const walLimits = {
  /**
   * A segment's pre-allocated size. Large enough that rolls are rare (one per ~64 MiB of
   * records) and small enough that retiring one frees space soon after its groups have
   * made their entries durable elsewhere.
   */
  segmentBytesDefault: 64 << 20,
  /** Smallest segment accepted by the options: a header sector and a few commits' sectors. */
  segmentBytesMin: 1024,
  /** One record's payload: the largest client frame (limits.protocol.frameBytesMax) fits in one entry. */
  recordPayloadBytesMax: 64 << 20,
  /**
   * What one commit may carry (record frames, WAL framing included). The caller commits
   * before reaching it; it also bounds the size of an oversized segment.
   */
  commitBytesMax: 256 << 20,
  /** Buffers in one writev call: Linux's IOV_MAX. A commit needing more is split into several calls. */
  iovecsMax: 1024,
  /**
   * Payloads shorter than this are copied into the commit's own buffer instead of being
   * referenced by an iovec of their own: a memcpy of a few KiB is cheaper than an iovec
   * entry, and it keeps a commit of 1000 small records to one or two iovecs.
   */
  copyPayloadBytesMax: 4096,
  /**
   * Background zero fill of a fresh segment goes in chunks this size, each fdatasynced
   * before the next: one 64 MiB write stalled concurrent 100 B commits for up to 52 ms
   * here; in synced 1 MiB chunks the worst was ~6 ms (their p99 1.6-3 ms while the fill
   * runs, against 0.5-0.7 ms). Recycled segments need no fill at all.
   */
  prepareChunkBytes: 1 << 20,
  /** Retired segments kept for reuse; the rest are deleted. */
  freeSegmentsMax: 4,
  /** Segment sequence numbers are u32 on disk. */
  segmentSeqMax: 0xffff_ffff,
} as const
