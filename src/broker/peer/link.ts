/**
 * PeerLink: one TCP connection to one peer node, from the first byte to the close: the
 * handshake (either role), coalesced sends, received frames handed on in order, and the
 * liveness timer that pings a quiet connection and closes a silent one.
 *
 * Invariants:
 * - `up` fires at most once, only after the handshake succeeded; `closed` fires exactly
 *   once, and after it nothing else does. Caller frames flow only between the two.
 * - Everything sent within one event-loop turn leaves as one socket write: frames are
 *   copied at send time into a few growing chunks (so the caller may reuse its buffer at
 *   once: msgpackr's pack() hands out views of a reused buffer), and one scheduled flush
 *   writes them, corked when there are several, so the kernel sees one writev.
 * - Bytes not yet taken by the kernel (the socket's buffer plus ours) never exceed
 *   outboundBytesMax because of a caller frame: such a send is refused, not queued.
 * - Until the handshake is done the decoder accepts only small frames
 *   (HANDSHAKE_FRAME_BYTES_MAX), so an unauthenticated stranger cannot make it buffer
 *   frameBytesMax; the limit is raised the moment the link is up.
 * - Nothing read from the socket can throw out of here: a malformed frame, an unexpected
 *   message or a length over the limit closes this connection with a warning naming the
 *   peer and the reason.
 *
 * One timer per link, armed for the earliest of its deadlines and re-armed lazily when it
 * fires (sends and receipts only move timestamps), so a busy link costs no timer calls
 * per message. It is unref'd and cleared when the socket closes. An idle deadline found
 * passed is checked once more after the next poll phase (setImmediate), because timers
 * run before sockets are read: a stall of our own must not drop a peer whose bytes wait.
 *
 * Imports base, node:net, ./handshake, ./log and ./wire.
 */
import { Buffer } from 'node:buffer'
import type { Socket } from 'node:net'
import { assert } from '../../base/index.js'
import { answerHello } from './handshake.js'
import type { LocalIdentity } from './handshake.js'
import type { LogThrottle, PeerLog } from './log.js'
import {
  CONTROL_CHANNEL,
  ControlType,
  FRAME_HEADER_BYTES,
  PEER_VERSION_MAX,
  PEER_VERSION_MIN,
  PING_PAYLOAD,
  PeerFrameDecoder,
  controlType,
  decodeHelloOk,
  decodeHelloRefused,
  encodeHello,
  encodeHelloOk,
  encodeHelloRefused,
  writeFrame,
} from './wire.js'
import type { DecodeErrorCode, Refusal, RefusalCode } from './wire.js'

/** Largest frame accepted before the handshake is done: a HELLO_REFUSED with its longest message fits. */
const HANDSHAKE_FRAME_BYTES_MAX = 2048
/** How long a refused connection waits for the dialer to close after the answer, before it is destroyed. */
const LINGER_MS = 1000
/**
 * A refused or stalled incoming connection is logged at most this often per reason and
 * remote host: a misconfigured dialer retries every few seconds for as long as it runs.
 */
const INCOMING_FAILURE_LOG_MS = 60_000
/** Send chunks start this small (one heartbeat needs no 64 KiB) and double up to the max within a turn. */
const CHUNK_BYTES_MIN = 512
const CHUNK_BYTES_MAX = 64 << 10

/** Counters of one transport, shared by its links. */
export interface PeerStats {
  /** Caller frames (channels 1..255) handed to sockets and received. */
  framesSent: number
  framesReceived: number
  /** Every byte written to and read from peer sockets, headers and the transport's own frames included. */
  bytesSent: number
  bytesReceived: number
  /** Socket writes: one per flush (several chunks go as one corked writev). */
  writes: number
  /** send() calls that returned false. */
  dropped: number
  /** Handshakes that succeeded, and connections that were up and closed. */
  connects: number
  disconnects: number
}

export function newStats(): PeerStats {
  return { framesSent: 0, framesReceived: 0, bytesSent: 0, bytesReceived: 0, writes: 0, dropped: 0, connects: 0, disconnects: 0 }
}

export interface LinkClose {
  readonly wasUp: boolean
  readonly reason: string
  /** The accepting node refused our HELLO (dialing links only). */
  readonly refusal?: Refusal
}

export interface LinkEvents {
  up(link: PeerLink): void
  /** A caller frame (channel 1..255), only while up; `payload` may be a view of the socket's chunk. */
  message(link: PeerLink, channel: number, payload: Uint8Array): void
  closed(link: PeerLink, close: LinkClose): void
}

export interface LinkOptions {
  readonly socket: Socket
  /** 'dial' sends HELLO and awaits the answer; 'accept' awaits a HELLO and answers it. */
  readonly role: 'dial' | 'accept'
  /** The node dialed (dial only). */
  readonly peer?: number
  readonly local: LocalIdentity
  readonly frameBytesMax: number
  readonly outboundBytesMax: number
  readonly pingMs: number
  readonly idleTimeoutMs: number
  readonly flushOn: 'microtask' | 'immediate'
  readonly log: PeerLog
  /** The transport's throttle, shared by its links. */
  readonly throttle: LogThrottle
  readonly stats: PeerStats
  readonly events: LinkEvents
}

type Phase = 'handshake' | 'up' | 'closed'

export class PeerLink {
  readonly role: 'dial' | 'accept'
  readonly #o: LinkOptions
  readonly #socket: Socket
  readonly #decoder: PeerFrameDecoder
  #phase: Phase = 'handshake'
  #peer: number | undefined
  #version = 0
  readonly #openedAt: number
  #lastReceivedAt: number
  #lastSentAt: number
  /** When set, the socket is being ended after a refusal and is destroyed at this time. */
  #lingerUntil: number | undefined
  #timer: NodeJS.Timeout | undefined
  /** A second look at an idle deadline that passed, after the loop has polled the sockets once more. */
  #idleRecheck: NodeJS.Immediate | undefined
  #socketError: string | undefined

  // outbound: frames copied into #chunks (full) and #chunk (being filled up to #chunkAt)
  #chunks: Buffer[] = []
  #chunk: Buffer | undefined
  #chunkAt = 0
  #nextChunkBytes = CHUNK_BYTES_MIN
  #pendingBytes = 0
  #pendingFrames = 0
  #flushScheduled = false

  constructor(o: LinkOptions) {
    assert(o.role === 'accept' || o.peer !== undefined, 'a dialing link knows its peer')
    this.#o = o
    this.role = o.role
    this.#socket = o.socket
    this.#peer = o.peer
    this.#openedAt = this.#lastReceivedAt = this.#lastSentAt = performance.now()
    this.#decoder = new PeerFrameDecoder(
      { frame: (channel, payload) => this.#onFrame(channel, payload), error: (code, message) => this.#onDecodeError(code, message) },
      HANDSHAKE_FRAME_BYTES_MAX,
    )
    // we coalesce ourselves; Nagle would only hold a lone heartbeat back
    this.#socket.setNoDelay(true)
    this.#socket.on('data', (chunk: Buffer) => this.#onData(chunk))
    this.#socket.on('error', (err) => {
      this.#socketError ??= err.message
    })
    this.#socket.on('close', () => this.#onSocketClose())
    if (o.role === 'dial') {
      // written before the connection completes: the socket holds it until then
      this.#enqueue(CONTROL_CHANNEL, encodeHello({ versionMin: PEER_VERSION_MIN, versionMax: PEER_VERSION_MAX, clusterId: o.local.clusterId, from: o.local.nodeId, to: o.peer! }))
      this.#flush()
    }
    this.#arm()
  }

  /** The other node's id: known from the start when dialing, from its HELLO when accepting. */
  get peer(): number | undefined {
    return this.#peer
  }

  get isUp(): boolean {
    return this.#phase === 'up'
  }

  get version(): number {
    return this.#version
  }

  get remote(): string {
    return `${this.#socket.remoteAddress ?? '?'}:${this.#socket.remotePort ?? '?'}`
  }

  /**
   * Queues one caller frame for this turn's write. False when it would push the bytes
   * not yet taken by the kernel past outboundBytesMax (the caller counts the drop).
   */
  send(channel: number, payload: Uint8Array): boolean {
    assert(this.#phase === 'up', 'PeerLink.send before the handshake or after the close')
    if (this.#socket.writableLength + this.#pendingBytes + FRAME_HEADER_BYTES + payload.length > this.#o.outboundBytesMax) return false
    this.#enqueue(channel, payload)
    this.#pendingFrames++
    this.#scheduleFlush()
    return true
  }

  /** Bytes waiting for the kernel: the socket's buffer and this turn's frames. */
  get unsentBytes(): number {
    return this.#socket.writableLength + this.#pendingBytes
  }

  /** Closes the connection now (replaced, idle, transport closing); `closed` fires with `reason`. */
  close(reason: string): void {
    this.#end({ wasUp: this.#phase === 'up', reason })
    this.#socket.destroy()
  }

  // ---------------------------------------------------------------------------------------
  // Outbound

  #enqueue(channel: number, payload: Uint8Array): void {
    const need = FRAME_HEADER_BYTES + payload.length
    if (this.#chunk === undefined || this.#chunk.length - this.#chunkAt < need) {
      if (this.#chunk !== undefined) this.#chunks.push(this.#chunk.subarray(0, this.#chunkAt))
      this.#chunk = Buffer.allocUnsafe(Math.max(need, this.#nextChunkBytes))
      this.#chunkAt = 0
      this.#nextChunkBytes = Math.min(this.#nextChunkBytes * 2, CHUNK_BYTES_MAX)
    }
    this.#chunkAt = writeFrame(this.#chunk, this.#chunkAt, channel, payload)
    this.#pendingBytes += need
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return
    this.#flushScheduled = true
    if (this.#o.flushOn === 'microtask') queueMicrotask(() => this.#flush())
    else setImmediate(() => this.#flush())
  }

  #flush(): void {
    this.#flushScheduled = false
    if (this.#pendingBytes === 0) return
    const chunks = this.#chunks
    if (this.#chunk !== undefined) chunks.push(this.#chunk.subarray(0, this.#chunkAt))
    const bytes = this.#pendingBytes
    const frames = this.#pendingFrames
    this.#chunks = []
    this.#chunk = undefined
    this.#chunkAt = 0
    this.#nextChunkBytes = CHUNK_BYTES_MIN
    this.#pendingBytes = 0
    this.#pendingFrames = 0
    if (this.#socket.destroyed || this.#phase === 'closed') return
    if (chunks.length === 1) {
      this.#socket.write(chunks[0]!)
    } else {
      this.#socket.cork()
      for (const c of chunks) this.#socket.write(c)
      this.#socket.uncork()
    }
    const stats = this.#o.stats
    stats.writes++
    stats.bytesSent += bytes
    stats.framesSent += frames
    this.#lastSentAt = performance.now()
  }

  // ---------------------------------------------------------------------------------------
  // Inbound

  #onData(chunk: Buffer): void {
    if (this.#phase === 'closed') return
    this.#o.stats.bytesReceived += chunk.length
    this.#lastReceivedAt = performance.now()
    this.#decoder.push(chunk)
  }

  #onFrame(channel: number, payload: Uint8Array): void {
    if (this.#phase === 'up') {
      if (channel !== CONTROL_CHANNEL) {
        this.#o.stats.framesReceived++
        this.#o.events.message(this, channel, payload)
      } else if (controlType(payload) !== ControlType.PING || payload.length !== 1) {
        this.#violation(`unexpected transport message (type ${payload[0] ?? 'none'}, ${payload.length} bytes) after the handshake`)
      }
      return
    }
    if (this.#phase !== 'handshake') return
    if (this.role === 'accept') this.#onHello(channel, payload)
    else this.#onHelloAnswer(channel, payload)
  }

  #onHello(channel: number, payload: Uint8Array): void {
    if (channel !== CONTROL_CHANNEL) return this.#refuse('BAD_HANDSHAKE', `the first frame is on channel ${channel}, not a HELLO`)
    const answer = answerHello(payload, this.#o.local)
    if (!answer.ok) return this.#refuse(answer.error.code, answer.error.message)
    this.#peer = answer.value.peer
    this.#enqueue(CONTROL_CHANNEL, encodeHelloOk(answer.value.version))
    this.#flush()
    this.#becomeUp(answer.value.version)
  }

  #onHelloAnswer(channel: number, payload: Uint8Array): void {
    const type = channel === CONTROL_CHANNEL ? controlType(payload) : undefined
    if (type === ControlType.HELLO_OK) {
      const version = decodeHelloOk(payload)
      if (!version.ok) return this.#violation(version.error.message)
      if (version.value < PEER_VERSION_MIN || version.value > PEER_VERSION_MAX) return this.#violation(`HELLO_OK chose version ${version.value}, which was not offered`)
      return this.#becomeUp(version.value)
    }
    if (type === ControlType.HELLO_REFUSED) {
      const refusal = decodeHelloRefused(payload)
      if (!refusal.ok) return this.#violation(refusal.error.message)
      this.#end({ wasUp: false, reason: `refused: ${refusal.value.code}: ${refusal.value.message}`, refusal: refusal.value })
      this.#socket.destroy()
      return
    }
    this.#violation(`expected HELLO_OK or HELLO_REFUSED, got ${channel === CONTROL_CHANNEL ? `transport message type ${payload[0] ?? 'none'}` : `a frame on channel ${channel}`}`)
  }

  #becomeUp(version: number): void {
    this.#phase = 'up'
    this.#version = version
    this.#decoder.frameBytesMax = this.#o.frameBytesMax
    this.#o.stats.connects++
    this.#arm() // from the handshake deadline to the ping and idle deadlines
    this.#o.events.up(this)
  }

  #onDecodeError(code: DecodeErrorCode, message: string): void {
    if (this.#phase === 'handshake' && this.role === 'accept') this.#refuse('BAD_HANDSHAKE', `${code}: ${message}`)
    else this.#violation(`${code}: ${message}`)
  }

  /** The accepting side's answer to a bad HELLO: HELLO_REFUSED, then the connection ends. */
  #refuse(code: RefusalCode, message: string): void {
    const fields = { peer: this.#peer ?? null, remote: this.remote, code, reason: message }
    this.#o.throttle.maybe(`refused:${code}:${this.#socket.remoteAddress}`, (suppressed) => this.#o.log.warn(suppressed > 0 ? { ...fields, suppressed } : fields, 'refused a peer connection'), INCOMING_FAILURE_LOG_MS)
    this.#decoder.stop()
    this.#enqueue(CONTROL_CHANNEL, encodeHelloRefused({ code, message }))
    this.#flush()
    this.#end({ wasUp: false, reason: `refused: ${code}: ${message}` })
    // end, not destroy: the answer must reach the dialer, which then closes; LINGER_MS bounds the wait
    this.#socket.end()
    this.#lingerUntil = performance.now() + LINGER_MS
    this.#arm()
  }

  /**
   * The other side broke the protocol: the stream cannot be trusted, so the connection
   * goes. A dialing link in its handshake leaves the warning to the dialer, which logs the
   * first failed attempt of a run rather than every retry.
   */
  #violation(reason: string): void {
    if (this.#phase === 'up' || this.role === 'accept') this.#o.log.warn({ peer: this.#peer ?? null, remote: this.remote, reason }, 'closing a peer connection: protocol violation')
    this.close(`protocol violation: ${reason}`)
  }

  // ---------------------------------------------------------------------------------------
  // Liveness and the end

  #arm(): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
    if (this.#socket.destroyed) return
    let at: number
    if (this.#lingerUntil !== undefined) at = this.#lingerUntil
    else if (this.#phase === 'handshake') at = this.#openedAt + this.#o.idleTimeoutMs
    else if (this.#phase === 'up') at = Math.min(this.#lastSentAt + this.#o.pingMs, this.#lastReceivedAt + this.#o.idleTimeoutMs)
    else return
    // +1: timers may fire up to a millisecond early against performance.now()
    this.#timer = setTimeout(() => this.#onTimer(), Math.max(0, Math.ceil(at - performance.now())) + 1)
    this.#timer.unref()
  }

  #onTimer(): void {
    this.#timer = undefined
    const now = performance.now()
    if (this.#lingerUntil !== undefined) {
      if (now >= this.#lingerUntil) return void this.#socket.destroy()
    } else if (this.#phase === 'handshake') {
      if (now >= this.#openedAt + this.#o.idleTimeoutMs) {
        if (this.role === 'accept') {
          const fields = { remote: this.remote, timeoutMs: this.#o.idleTimeoutMs }
          this.#o.throttle.maybe(`handshake:${this.#socket.remoteAddress}`, (suppressed) => this.#o.log.warn(suppressed > 0 ? { ...fields, suppressed } : fields, 'an incoming peer connection sent no HELLO in time'), INCOMING_FAILURE_LOG_MS)
        }
        return this.close(`no handshake within ${this.#o.idleTimeoutMs} ms`)
      }
    } else if (this.#phase === 'up') {
      if (now - this.#lastReceivedAt >= this.#o.idleTimeoutMs) {
        // Timers run before the loop polls sockets, so after a stall of our own (a long GC
        // pause, a blocking call) the peer's bytes may be sitting unread: look again once
        // the next poll phase has read them, instead of dropping a live peer.
        this.#idleRecheck = setImmediate(() => this.#onIdleRecheck())
        this.#idleRecheck.unref()
        return
      }
      if (now - this.#lastSentAt >= this.#o.pingMs) {
        this.#enqueue(CONTROL_CHANNEL, PING_PAYLOAD)
        this.#flush()
      }
    }
    this.#arm()
  }

  #onIdleRecheck(): void {
    this.#idleRecheck = undefined
    if (this.#phase !== 'up') return
    const silentMs = performance.now() - this.#lastReceivedAt
    if (silentMs >= this.#o.idleTimeoutMs) return this.close(`nothing received for ${Math.round(silentMs)} ms (idle timeout ${this.#o.idleTimeoutMs} ms)`)
    this.#arm()
  }

  #onSocketClose(): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
    clearImmediate(this.#idleRecheck)
    this.#idleRecheck = undefined
    this.#end({ wasUp: this.#phase === 'up', reason: this.#socketError ?? 'connection closed by the peer' })
  }

  #end(close: LinkClose): void {
    if (this.#phase === 'closed') return
    this.#phase = 'closed'
    this.#decoder.stop()
    this.#chunks = []
    this.#chunk = undefined
    this.#pendingBytes = 0
    this.#pendingFrames = 0
    if (close.wasUp) this.#o.stats.disconnects++
    this.#o.events.closed(this, close)
  }
}
