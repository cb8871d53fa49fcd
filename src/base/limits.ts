/**
 * The limits table: every queue, batch and loop in raftmq has a bound, and the
 * defaults live here, in one place, with the reason for each. Modules take these as
 * defaults for their options and enforce them where data enters.
 *
 * Imports nothing.
 */

export const limits = {
  raft: {
    /** Ticks without a leader before a follower campaigns (randomised up to 2x). */
    electionTicks: 10,
    /** Ticks between leader heartbeats. */
    heartbeatTicks: 1,
    /** AppendEntries messages in flight to one follower before the leader waits for acks. */
    inflightMsgsMax: 256,
    /** Entry bytes in one AppendEntries message (a large batch entry may exceed it alone). */
    appendBytesMax: 1 << 20,
    /** Entry bytes of committed entries handed to the host in one Ready. */
    applyBytesMax: 64 << 20,
    /** Entry bytes appended by the leader but not yet committed; past it proposals are refused. */
    uncommittedBytesMax: 256 << 20,
    /** Entries in one propose() call. */
    proposalEntriesMax: 100_000,
  },
  protocol: {
    /** One client frame (length prefix excluded); a larger prefix closes the connection. */
    frameBytesMax: 64 << 20,
    /** Requests one connection may have in flight before the server stops reading from it. */
    inflightRequestsMax: 1024,
    /**
     * Memory one connection's requests in flight may claim (their frames, and for a fetch
     * the answer it may grow to) before the server stops reading from it: without it, 1024
     * fetches of 32 MiB each could claim 32 GiB. A single larger request still runs alone.
     */
    inflightBytesMax: 256 << 20,
    /** Answer bytes waiting to be sent on one connection past which the server stops reading its requests. */
    unsentBytesMax: 8 << 20,
  },
  produce: {
    /** One record (key + value + headers, uncompressed). */
    messageBytesMax: 1 << 20,
    /** One RecordBatch as sent (compressed size). */
    batchBytesMax: 16 << 20,
    /** One RecordBatch once decompressed, so a small zip bomb cannot exhaust memory. */
    batchDecompressedBytesMax: 64 << 20,
    /** Records in one RecordBatch. */
    batchRecordsMax: 100_000,
    /** Kafka's idempotence window: the last batches remembered per producer and partition. */
    producerBatchesRemembered: 5,
  },
  storage: {
    /**
     * Recently applied record batches one partition keeps in memory, so tailing consumers
     * read them without a store read (and batches not yet written to the store are served
     * from here whatever this says).
     */
    recentBatchBytesMax: 2 << 20,
    /**
     * Partition stores (LevelDB databases) one node keeps open at once, shared out over its
     * threads: each holds at least four file descriptors, so 10,000 open at once would
     * exhaust a default descriptor limit. The others are closed until used.
     */
    openStoresMax: 1024,
    /** Pre-allocated size of one write-ahead log segment. */
    walSegmentBytes: 64 << 20,
  },
  peer: {
    /**
     * The largest payload one node-to-node frame carries (the channel byte and length
     * prefix not counted); a longer length prefix closes the connection before anything
     * is buffered. Large enough for an InstallSnapshot chunk or a full AppendEntries
     * (raft.appendBytesMax) with room to spare.
     */
    frameBytesMax: 64 << 20,
    /**
     * Bytes queued for one peer and not yet taken by the kernel (ours plus the socket's
     * own buffer) past which sends to that peer are dropped: Raft retransmits, so a slow
     * or stuck peer costs at most this much memory instead of growing without bound.
     */
    outboundBytesMax: 64 << 20,
    /** A PING goes to a peer nothing else was sent to for this long, so its idle timer does not fire. */
    pingMs: 500,
    /**
     * A connection nothing arrived on for this long is closed and the peer declared down:
     * the node-level failure detector (a frozen process is noticed within it). Ten pings,
     * so a busy event loop or a lost segment's retransmit does not trip it.
     */
    idleTimeoutMs: 5_000,
    /** Reconnect delays, doubling from min to max, each with up to half of it taken off at random. */
    backoffMinMs: 50,
    backoffMaxMs: 2_000,
  },
  snapshot: {
    /**
     * Bytes of one answer of a snapshot transfer (the state machine's bytes, or record
     * batches; a single batch larger than this goes alone): one per request, and a
     * follower has one request out at a time, so a transfer never floods the peer link
     * the group's heartbeats share, and stays far below the peer frame limit.
     */
    chunkBytesMax: 1 << 20,
    /** Record batches in one answer (small batches: the per-batch checks bound the work of one step). */
    chunkBatchesMax: 500,
    /** Transfers one thread's replicas send at once; a follower offered one past it is told to come back later. */
    sendsPerThreadMax: 4,
    /** Transfers one thread's replicas receive at once; past it the offer is declined and comes again. */
    receivesPerThreadMax: 2,
    /** A transfer nothing moved in for this long is abandoned by either side (the follower asks again when offered one anew). */
    idleTimeoutMs: 30_000,
    /** A chunk request unanswered for this long is sent again (messages between nodes may be lost). */
    requestRetryMs: 2_000,
  },
  cluster: {
    /** Nodes in one cluster's static member list. */
    nodesMax: 256,
    /** Voters of the metadata group (group 0): the first nodes by id. */
    controllerVotersMax: 3,
    /** How long a node waits for the controller to answer a forwarded metadata command. */
    controllerRequestMs: 10_000,
  },
  fetch: {
    /** Bytes one fetch may return in all: half the frame limit, so the response and its envelope always frame. */
    responseBytesMax: 32 << 20,
    /** Longest long-poll. */
    maxWaitMsMax: 30_000,
  },
} as const
