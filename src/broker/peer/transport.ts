/**
 * PeerTransport: the node-to-node connections of one node. Every Raft group's traffic to
 * a node, and the other node-level channels, share ONE TCP connection per node pair.
 *
 * - Direction: the lower id dials the higher; the higher only accepts. So there is one
 *   connection per pair without any tie-breaking, and a restarted node is simply
 *   re-dialed (or re-dials). An accepted connection that completes its handshake while
 *   the same peer already has one replaces it: the peer restarted or gave up on the old
 *   one, and its old connection is closed (onPeerDown, then onPeerUp, fire for it: the
 *   messages in flight on the old one are lost, as on any disconnect).
 * - A peer is up from its handshake's success to its connection's close; onPeerUp and
 *   onPeerDown fire once per transition, close() included.
 * - Sending never blocks and never queues without bound: to a peer that is down, past
 *   outboundBytesMax of unsent bytes, or over frameBytesMax, send() drops the payload,
 *   counts it and returns false; Raft retransmits. What is sent in one event-loop turn to
 *   one peer leaves in one socket write (link.ts).
 * - Liveness is per connection (link.ts): a PING after pingMs without sending, a close
 *   after idleTimeoutMs without receiving. It is the node-level failure detector: a frozen
 *   peer (SIGSTOP, a stalled event loop) is declared down within idleTimeoutMs.
 * - onMessage runs synchronously per frame, in arrival order. Its payload may be a view of
 *   the socket's chunk: copy what is kept long. A throwing callback is the caller's bug:
 *   logged as an error, and the connection stays.
 * - Peers may be added and removed while it runs (a node joining or leaving the running
 *   cluster): an added higher-id peer is dialed, a removed one's dialer stops and its
 *   connection closes, and from then on its HELLO is refused as UNKNOWN_NODE.
 * - Every log line about a peer carries `peer`; repeated lines on hot paths are throttled
 *   (log.ts). Nothing it arms keeps the process alive, and close() leaves no handle.
 *
 * Imports base, node:net, and ./ modules of the peer transport (never raft, group or
 * replica: the payloads are opaque bytes here).
 */
import { createServer } from 'node:net'
import type { Server, Socket } from 'node:net'
import { assert, fail, limits, ok } from '../../base/index.js'
import type { Result } from '../../base/index.js'
import { Dialer } from './dialer.js'
import { PeerLink, newStats } from './link.js'
import type { LinkClose, LinkEvents, PeerStats } from './link.js'
import { LogThrottle } from './log.js'
import type { PeerLog } from './log.js'
import { CHANNEL_MAX, CLUSTER_ID_CHARS_MAX, isNodeId } from './wire.js'

export interface PeerAddress {
  readonly host: string
  readonly port: number
}

export interface PeerTransportOptions {
  readonly nodeId: number
  readonly clusterId: string
  /** Where this node accepts peers; port 0 picks a free one (see `address`). */
  readonly listen: PeerAddress
  /** Every OTHER node's peer address. Lower ids are expected to dial us; we dial the higher ones. */
  readonly peers: ReadonlyMap<number, PeerAddress>
  readonly log: PeerLog
  /** A frame from `from` on `channel` (1..255); synchronous, in arrival order. */
  readonly onMessage: (from: number, channel: number, payload: Uint8Array) => void
  readonly onPeerUp?: (id: number) => void
  readonly onPeerDown?: (id: number) => void
  /** The largest payload of one frame (default limits.peer.frameBytesMax). */
  readonly frameBytesMax?: number
  /** Unsent bytes per peer past which sends are dropped (default limits.peer.outboundBytesMax). */
  readonly outboundBytesMax?: number
  readonly pingMs?: number
  readonly idleTimeoutMs?: number
  readonly backoffMinMs?: number
  readonly backoffMaxMs?: number
  /**
   * When a turn's sends are written: 'immediate' (default) flushes in setImmediate, after
   * every socket read and worker message of the loop iteration has been handled, so their
   * replies to one peer share a write; 'microtask' flushes at the end of the current
   * callback (lower latency, more writes). Measured in bench/peer-transport.ts.
   */
  readonly flushOn?: 'microtask' | 'immediate'
}

type Resolved = Required<Omit<PeerTransportOptions, 'onPeerUp' | 'onPeerDown'>> & Pick<PeerTransportOptions, 'onPeerUp' | 'onPeerDown'>

export type PeerTransportStats = Readonly<PeerStats>

/** Incoming connections still in their handshake past which new ones are closed at once (a flood, not peers). */
const ACCEPTS_PENDING_MAX = 64
/** Throttled log lines go out at most this often per kind and peer. */
const LOG_THROTTLE_MS = 1000

export class PeerTransport {
  readonly address: PeerAddress
  readonly #o: Resolved
  readonly #server: Server
  /** Links that are up, by peer id. */
  readonly #up = new Map<number, PeerLink>()
  readonly #dialers = new Map<number, Dialer>()
  /** The dialer that made each dialing link: told how its own attempt ended, not a successor's (addPeer with a new address). */
  readonly #dialedBy = new Map<PeerLink, Dialer>()
  /** Every socket not yet closed (dialing, handshaking, up, lingering after a refusal). */
  readonly #sockets = new Set<Socket>()
  #acceptsPending = 0
  readonly #stats = newStats()
  readonly #throttle = new LogThrottle(LOG_THROTTLE_MS)
  readonly #events: LinkEvents
  /** The peers as they are now (the options' list, then addPeer and removePeer): what HELLOs are checked against. */
  readonly #peers: Map<number, PeerAddress>
  #closing: Promise<void> | undefined

  private constructor(server: Server, o: Resolved, address: PeerAddress) {
    this.#server = server
    this.#o = o
    this.address = address
    this.#peers = new Map(o.peers)
    this.#events = {
      up: (link) => this.#onUp(link),
      message: (link, channel, payload) => this.#onMessage(link, channel, payload),
      closed: (link, close) => this.#onClosed(link, close),
    }
  }

  /** Listens, then starts dialing every higher-id peer. LISTEN: the address could not be bound. */
  static start(options: PeerTransportOptions): Promise<Result<PeerTransport, 'LISTEN'>> {
    const o = resolve(options)
    return new Promise((done) => {
      const server = createServer()
      const onError = (err: Error): void => done(fail('LISTEN', `cannot listen for peers on ${o.listen.host}:${o.listen.port}: ${err.message}`))
      server.once('error', onError)
      server.listen(o.listen.port, o.listen.host, () => {
        server.off('error', onError)
        const a = server.address()
        assert(a !== null && typeof a !== 'string', 'a TCP server has an address')
        const t = new PeerTransport(server, o, { host: a.address, port: a.port })
        server.on('connection', (socket) => t.#onConnection(socket))
        server.on('error', (err) => o.log.error({ err: err.message }, 'peer listener error'))
        o.log.info({ nodeId: o.nodeId, host: a.address, port: a.port, peers: [...o.peers.keys()] }, 'peer transport listening')
        t.#startDialing()
        done(ok(t))
      })
    })
  }

  /**
   * Queues `payload` for `to` on `channel` (1..255). The payload is copied before this
   * returns. False when it is dropped: `to` is down or not a peer, its unsent bytes would
   * pass outboundBytesMax, or the payload is over frameBytesMax.
   */
  send(to: number, channel: number, payload: Uint8Array): boolean {
    assert(Number.isInteger(channel) && channel >= 1 && channel <= CHANNEL_MAX, () => `peer channel ${channel}: callers use 1..${CHANNEL_MAX}`)
    const link = this.#up.get(to)
    if (link === undefined) {
      if (!this.#peers.has(to)) this.#throttled('error', `unknown:${to}`, { peer: to }, 'send to a node that is not a peer: dropped')
      return this.#drop()
    }
    if (payload.length > this.#o.frameBytesMax) {
      this.#throttled('error', `large:${to}`, { peer: to, channel, bytes: payload.length, limit: this.#o.frameBytesMax }, 'payload over frameBytesMax: dropped (a caller bug)')
      return this.#drop()
    }
    if (!link.send(channel, payload)) {
      this.#throttled('warn', `full:${to}`, { peer: to, channel, bytes: payload.length, unsentBytes: link.unsentBytes, limit: this.#o.outboundBytesMax }, 'peer is not keeping up: outbound bytes over outboundBytesMax, dropped')
      return this.#drop()
    }
    return true
  }

  isUp(id: number): boolean {
    return this.#up.has(id)
  }

  /**
   * Node `id` is a peer from now on, at `address`: dialed if its id is higher (a peer
   * already known at another address is dialed there from its next attempt on).
   */
  addPeer(id: number, address: PeerAddress): void {
    assert(isNodeId(id) && id !== this.#o.nodeId, () => `PeerTransport.addPeer: peer id ${id} (this node is ${this.#o.nodeId})`)
    const known = this.#peers.get(id)
    if (known !== undefined && known.host === address.host && known.port === address.port) return
    if (known !== undefined) this.removePeer(id) // its connection is to the old address
    this.#peers.set(id, address)
    this.#o.log.info({ peer: id, host: address.host, port: address.port }, known === undefined ? 'peer added' : 'peer address changed')
    if (this.#closing === undefined && id > this.#o.nodeId) this.#dial(id, address)
  }

  /** Node `id` is no longer a peer: its dialer stops and its connection, if up, closes. */
  removePeer(id: number): void {
    if (!this.#peers.delete(id)) return
    this.#dialers.get(id)?.stop()
    this.#dialers.delete(id)
    this.#up.get(id)?.close('removed from the cluster')
    this.#o.log.info({ peer: id }, 'peer removed')
  }

  /** The ids of the peers that are up, ascending. */
  peersUp(): number[] {
    return [...this.#up.keys()].sort((a, b) => a - b)
  }

  stats(): PeerTransportStats {
    return { ...this.#stats }
  }

  /** Stops listening and dialing and closes every connection (onPeerDown fires for those up); resolves once every socket has closed. */
  close(): Promise<void> {
    this.#closing ??= this.#close()
    return this.#closing
  }

  async #close(): Promise<void> {
    for (const d of this.#dialers.values()) d.stop()
    const listenerClosed = new Promise<void>((r) => this.#server.close(() => r()))
    for (const link of [...this.#up.values()]) link.close('transport closed')
    const socketsClosed = [...this.#sockets].map((s) => new Promise<void>((r) => s.once('close', () => r())))
    for (const s of this.#sockets) s.destroy()
    await Promise.all([listenerClosed, ...socketsClosed])
    this.#o.log.info({ nodeId: this.#o.nodeId }, 'peer transport closed')
  }

  // ---------------------------------------------------------------------------------------

  #startDialing(): void {
    for (const [peer, address] of this.#peers) {
      if (peer > this.#o.nodeId) this.#dial(peer, address) // a lower id dials us
    }
  }

  #dial(peer: number, address: PeerAddress): void {
    const dialer = new Dialer({
      peer,
      address,
      backoffMinMs: this.#o.backoffMinMs,
      backoffMaxMs: this.#o.backoffMaxMs,
      log: this.#o.log,
      connect: (socket) => this.#dialedBy.set(this.#link(socket, 'dial', peer), dialer),
    })
    this.#dialers.set(peer, dialer)
    dialer.start()
  }

  #onConnection(socket: Socket): void {
    if (this.#closing !== undefined) return void socket.destroy()
    if (this.#acceptsPending >= ACCEPTS_PENDING_MAX) {
      this.#throttled('warn', 'accepts', { remote: `${socket.remoteAddress}:${socket.remotePort}`, limit: ACCEPTS_PENDING_MAX }, 'too many peer connections in their handshake: closed a new one')
      return void socket.destroy()
    }
    this.#acceptsPending++
    this.#link(socket, 'accept', undefined)
  }

  #link(socket: Socket, role: 'dial' | 'accept', peer: number | undefined): PeerLink {
    this.#sockets.add(socket)
    socket.once('close', () => this.#sockets.delete(socket))
    const o = this.#o
    return new PeerLink({
      socket,
      role,
      peer,
      local: { nodeId: o.nodeId, clusterId: o.clusterId, peers: this.#peers },
      frameBytesMax: o.frameBytesMax,
      outboundBytesMax: o.outboundBytesMax,
      pingMs: o.pingMs,
      idleTimeoutMs: o.idleTimeoutMs,
      flushOn: o.flushOn,
      log: o.log,
      throttle: this.#throttle,
      stats: this.#stats,
      events: this.#events,
    })
  }

  #onUp(link: PeerLink): void {
    const peer = link.peer!
    if (link.role === 'accept') {
      this.#acceptsPending--
      // the peer dialed again while we still hold its old connection: the new one wins
      this.#up.get(peer)?.close('replaced by a new connection from the same peer')
    } else {
      this.#dialedBy.get(link)?.onUp()
    }
    this.#up.set(peer, link)
    this.#o.log.info({ peer, role: link.role, version: link.version, remote: link.remote }, 'peer up')
    this.#callback('onPeerUp', peer, () => this.#o.onPeerUp?.(peer))
  }

  #onMessage(link: PeerLink, channel: number, payload: Uint8Array): void {
    const peer = link.peer!
    try {
      this.#o.onMessage(peer, channel, payload)
    } catch (err) {
      this.#throttled('error', `onMessage:${peer}`, { peer, channel, err: errorText(err) }, 'onMessage threw (a caller bug); the connection stays')
    }
  }

  #onClosed(link: PeerLink, close: LinkClose): void {
    if (link.role === 'accept' && !close.wasUp) this.#acceptsPending--
    const peer = link.peer
    if (close.wasUp && peer !== undefined && this.#up.get(peer) === link) {
      this.#up.delete(peer)
      this.#o.log.info({ peer, reason: close.reason }, 'peer down')
      this.#callback('onPeerDown', peer, () => this.#o.onPeerDown?.(peer))
    }
    const dialer = this.#dialedBy.get(link)
    this.#dialedBy.delete(link)
    if (dialer !== undefined && this.#closing === undefined) dialer.onClosed(close)
  }

  #callback(name: string, peer: number, call: () => void): void {
    try {
      call()
    } catch (err) {
      this.#o.log.error({ peer, err: errorText(err) }, `${name} threw (a caller bug)`)
    }
  }

  #drop(): false {
    this.#stats.dropped++
    return false
  }

  #throttled(level: 'warn' | 'error', key: string, fields: object, msg: string): void {
    this.#throttle.maybe(key, (suppressed) => this.#o.log[level](suppressed > 0 ? { ...fields, suppressed } : fields, msg))
  }
}

function resolve(o: PeerTransportOptions): Resolved {
  const p = limits.peer
  const r: Resolved = {
    ...o,
    frameBytesMax: o.frameBytesMax ?? p.frameBytesMax,
    outboundBytesMax: o.outboundBytesMax ?? p.outboundBytesMax,
    pingMs: o.pingMs ?? p.pingMs,
    idleTimeoutMs: o.idleTimeoutMs ?? p.idleTimeoutMs,
    backoffMinMs: o.backoffMinMs ?? p.backoffMinMs,
    backoffMaxMs: o.backoffMaxMs ?? p.backoffMaxMs,
    flushOn: o.flushOn ?? 'immediate',
  }
  // options come from code and a validated config: a bad one is a bug, stopped here rather than at the first frame
  assert(isNodeId(r.nodeId), () => `PeerTransport: node id ${r.nodeId}`)
  assert(r.clusterId.length <= CLUSTER_ID_CHARS_MAX, () => `PeerTransport: cluster id longer than ${CLUSTER_ID_CHARS_MAX} characters`)
  for (const [id, a] of r.peers) {
    assert(isNodeId(id) && id !== r.nodeId, () => `PeerTransport: peer id ${id} (this node is ${r.nodeId})`)
    assert(Number.isInteger(a.port) && a.port > 0 && a.port < 65536, () => `PeerTransport: peer ${id} port ${a.port}`)
  }
  const positive = (name: keyof Resolved): void => {
    const v = r[name] as number
    assert(Number.isInteger(v) && v > 0, () => `PeerTransport: ${name} ${v}`)
  }
  for (const name of ['frameBytesMax', 'outboundBytesMax', 'pingMs', 'idleTimeoutMs', 'backoffMinMs', 'backoffMaxMs'] as const) positive(name)
  assert(r.frameBytesMax < 0xffff_ffff, () => `PeerTransport: frameBytesMax ${r.frameBytesMax} does not fit the u32 length prefix`)
  assert(r.pingMs < r.idleTimeoutMs, () => `PeerTransport: pingMs ${r.pingMs} must be below idleTimeoutMs ${r.idleTimeoutMs}, or an idle peer is declared down`)
  assert(r.backoffMinMs <= r.backoffMaxMs, () => `PeerTransport: backoffMinMs ${r.backoffMinMs} over backoffMaxMs ${r.backoffMaxMs}`)
  assert(r.flushOn === 'microtask' || r.flushOn === 'immediate', () => `PeerTransport: flushOn ${String(r.flushOn)}`)
  return r
}

function errorText(err: unknown): string {
  return err instanceof Error ? (err.stack ?? err.message) : String(err)
}
