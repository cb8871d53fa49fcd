/**
 * Connection: one TCP connection to a broker, speaking protocol version 1. It sends the
 * hello, then pipelines requests: each gets a fresh id, responses resolve by id in any
 * order, requests written in one event-loop turn go out in one write. Every response is
 * validated against its API's schema; a connection-level error (id 0), a malformed
 * response or a closed socket fails everything in flight with a RaftmqError.
 *
 * Opening is bounded by the connect timeout as a whole (TCP connect and hello), not by
 * the request timeout: a server that accepts and never answers fails as fast as one that
 * refuses. Bytes before the hello's answer that are not a raftmq frame (an HTTP server's
 * "HTTP/1.1 400", a length past the frame limit, an unparseable answer) name the server
 * as NOT_A_BROKER. A connection whose hello failed is closed.
 *
 * Imports base, protocol and node:net.
 */
import { connect } from 'node:net'
import type { Socket } from 'node:net'
import { CONNECTION_ERROR_ID, PROTOCOL_VERSION_MAX, PROTOCOL_VERSION_MIN, REQUEST_ID_MAX, parseResponse } from '../protocol/api.js'
import type { ApiName, HelloResponse, RequestBody, ResponseBody } from '../protocol/api.js'
import { encodeMessageFrame } from '../protocol/codec.js'
import { formatMessage } from '../protocol/errors.js'
import { FrameDecoder } from '../protocol/frame.js'
import { RaftmqError } from './errors.js'

/** How much of a non-broker's first answer an error shows. */
const FIRST_BYTES_SHOWN = 24

/** Bytes as a person can read them: text when they are printable ASCII, hex otherwise. */
function shown(bytes: Uint8Array | null): string {
  if (bytes === null || bytes.length === 0) return 'nothing'
  const printable = bytes.every((b) => (b >= 0x20 && b < 0x7f) || b === 0x0a || b === 0x0d || b === 0x09)
  return printable ? JSON.stringify(new TextDecoder().decode(bytes)) : `bytes ${Buffer.from(bytes).toString('hex')}`
}

interface InFlight {
  readonly api: ApiName
  readonly resolve: (body: unknown) => void
  readonly reject: (err: RaftmqError) => void
  readonly timer: NodeJS.Timeout
}

export interface ConnectionOptions {
  readonly clientId: string
  readonly connectTimeoutMs: number
  readonly requestTimeoutMs: number
}

export class Connection {
  readonly broker: string
  #socket: Socket
  #version = PROTOCOL_VERSION_MIN
  #nextId = 1
  readonly #inflight = new Map<number, InFlight>()
  readonly #decoder: FrameDecoder
  readonly #opts: ConnectionOptions
  #out: Uint8Array[] = []
  #flushScheduled = false
  #closed: RaftmqError | null = null
  server: HelloResponse | null = null
  /** Resolves with why, once the connection is closed (whoever closed it). */
  readonly whenClosed: Promise<RaftmqError>
  #closedResolve: (err: RaftmqError) => void = () => {}
  /** Set once the hello is answered: before, bytes that are not our protocol mean the server is not a broker. */
  #greeted = false
  /** The first bytes the server sent, to show what it is when it is not a broker. */
  #first: Uint8Array | null = null

  private constructor(socket: Socket, broker: string, opts: ConnectionOptions) {
    this.#socket = socket
    this.broker = broker
    this.#opts = opts
    this.whenClosed = new Promise((resolve) => (this.#closedResolve = resolve))
    this.#decoder = new FrameDecoder({
      frame: (body) => this.#onFrame(body),
      error: (e) => this.#fail(this.#greeted ? new RaftmqError(e.code, e.message) : this.#notABroker(`it sent ${shown(this.#first)}, not a raftmq frame (${e.message})`)),
    })
    socket.setNoDelay(true)
    socket.on('data', (chunk: Buffer) => {
      // a copy: a view would keep the whole first chunk alive as long as the connection
      if (this.#first === null && !this.#greeted) this.#first = Buffer.from(chunk.subarray(0, FIRST_BYTES_SHOWN))
      this.#decoder.push(chunk)
    })
    socket.on('error', (err) => this.#fail(new RaftmqError('CONNECTION_CLOSED', formatMessage('CONNECTION_CLOSED', { broker }), { cause: err })))
    socket.on('close', () => this.#fail(new RaftmqError('CONNECTION_CLOSED', formatMessage('CONNECTION_CLOSED', { broker }))))
  }

  /** Connects and exchanges hello, within the connect timeout; rejects with a RaftmqError. */
  static async open(host: string, port: number, opts: ConnectionOptions): Promise<Connection> {
    const broker = `${host}:${port}`
    const started = Date.now()
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = connect({ host, port })
      // an unreachable node, not a slow request: CONNECTION_CLOSED, which routes the retry elsewhere
      const timer = setTimeout(() => {
        s.destroy()
        reject(new RaftmqError('CONNECTION_CLOSED', `cannot connect to ${broker}: no answer within ${opts.connectTimeoutMs} ms`))
      }, opts.connectTimeoutMs)
      s.once('connect', () => {
        clearTimeout(timer)
        resolve(s)
      })
      s.once('error', (err) => {
        clearTimeout(timer)
        reject(new RaftmqError('CONNECTION_CLOSED', `cannot connect to ${broker}: ${err.message}`, { cause: err }))
      })
    })
    const c = new Connection(socket, broker, opts)
    try {
      const left = Math.max(1, opts.connectTimeoutMs - (Date.now() - started))
      c.server = await c.request('hello', { clientId: opts.clientId, versionMin: PROTOCOL_VERSION_MIN, versionMax: PROTOCOL_VERSION_MAX }, left).catch((err: unknown) => {
        // a server that took the connection and never answered: unreachable as a broker, so routed around like a refusal
        if (err instanceof RaftmqError && err.code === 'TIMEOUT') throw new RaftmqError('CONNECTION_CLOSED', `cannot connect to ${broker}: it accepted the connection but did not answer the hello within ${opts.connectTimeoutMs} ms (is it a raftmq broker?)`)
        throw err
      })
      c.#greeted = true
    } catch (err) {
      c.close() // a socket whose hello failed serves nobody: do not leave it open
      throw err
    }
    c.#version = c.server.version
    return c
  }

  get closed(): boolean {
    return this.#closed !== null
  }

  request<A extends ApiName>(api: A, body: RequestBody<A>, timeoutMs = this.#opts.requestTimeoutMs): Promise<ResponseBody<A>> {
    if (this.#closed) return Promise.reject(this.#closed)
    const id = this.#nextId
    this.#nextId = this.#nextId >= REQUEST_ID_MAX ? 1 : this.#nextId + 1
    const frame = encodeMessageFrame({ id, api, version: api === 'hello' ? 1 : this.#version, body }, this.server?.limits.frameBytesMax)
    if (!frame.ok) return Promise.reject(new RaftmqError('FRAME_TOO_LARGE', frame.error.message))
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#inflight.delete(id)
        reject(new RaftmqError('TIMEOUT', formatMessage('TIMEOUT', { timeoutMs }) + ` (${api} to ${this.broker})`))
      }, timeoutMs)
      this.#inflight.set(id, { api, resolve: resolve as (b: unknown) => void, reject, timer })
      this.#out.push(frame.value)
      if (!this.#flushScheduled) {
        this.#flushScheduled = true
        queueMicrotask(() => this.#flush())
      }
    })
  }

  #flush(): void {
    this.#flushScheduled = false
    if (this.#closed || this.#out.length === 0) return
    const out = this.#out
    this.#out = []
    this.#socket.cork()
    for (const b of out) this.#socket.write(b)
    this.#socket.uncork()
  }

  #onFrame(body: Uint8Array): void {
    const r = parseResponse(body, (id) => this.#inflight.get(id)?.api)
    if (!r.ok) {
      this.#fail(this.#greeted ? new RaftmqError('INVALID_RESPONSE', `${r.error.message} (from ${this.broker})`) : this.#notABroker(`it answered the hello with ${shown(this.#first)}, not a raftmq response (${r.error.message})`))
      return
    }
    const res = r.value
    if (res.id === CONNECTION_ERROR_ID) {
      this.#fail(res.ok ? new RaftmqError('INVALID_RESPONSE', 'a successful response under id 0') : RaftmqError.from(res.error))
      return
    }
    const w = this.#inflight.get(res.id)
    if (!w) return // timed out meanwhile
    this.#inflight.delete(res.id)
    clearTimeout(w.timer)
    if (res.ok) w.resolve(res.body)
    else w.reject(RaftmqError.from(res.error))
  }

  #notABroker(reason: string): RaftmqError {
    return new RaftmqError('NOT_A_BROKER', formatMessage('NOT_A_BROKER', { broker: this.broker, reason }))
  }

  #fail(err: RaftmqError): void {
    if (this.#closed) return
    this.#closed = err
    this.#closedResolve(err)
    this.#decoder.stop()
    for (const w of this.#inflight.values()) {
      clearTimeout(w.timer)
      w.reject(err)
    }
    this.#inflight.clear()
    this.#socket.destroy()
  }

  /** Fails what is in flight with `reason` (default CONNECTION_CLOSED) and closes the socket. */
  close(reason?: RaftmqError): void {
    this.#fail(reason ?? new RaftmqError('CONNECTION_CLOSED', formatMessage('CONNECTION_CLOSED', { broker: this.broker })))
  }
}
