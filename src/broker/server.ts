/**
 * ClientServer: accepts client TCP connections, splits each byte stream into frames,
 * validates each request, runs its handler and writes the response. Responses may leave
 * out of order (pipelining) and those ready in one event-loop turn go out in one write.
 *
 * Rules it enforces (see src/protocol/api.ts): hello first; a frame over the limit or
 * bytes that are not a request envelope get an error under id 0 and a closed connection
 * (the stream can no longer be trusted); a request that is readable but wrong gets an
 * error under its own id and the connection stays; at most `inflightRequestsMax`
 * requests per connection are in flight, claiming at most `inflightBytesMax` (their
 * frames plus what a fetch may answer) — past either the server stops reading from the
 * socket until answers drain (backpressure instead of unbounded memory) — and it also
 * stops reading while more than `unsentBytesMax` of answers wait to be sent, so a client
 * that pipelines requests but does not read its answers cannot make the node buffer them
 * without bound; reading resumes when the socket drains. A handler that
 * throws is a bug: it is logged and answered INTERNAL, and the node keeps serving.
 *
 * Imports base, protocol and ./handlers.
 */
import { createServer } from 'node:net'
import type { Server, Socket } from 'node:net'
import { limits } from '../base/index.js'
import {
  CONNECTION_ERROR_ID,
  PROTOCOL_VERSION_MAX,
  PROTOCOL_VERSION_MIN,
  errorResponse,
  negotiateVersion,
  okResponse,
  parseRequest,
  rejectionResponse,
} from '../protocol/api.js'
import type { ApiName, Request } from '../protocol/api.js'
import { encodeMessageFrame } from '../protocol/codec.js'
import { wireError } from '../protocol/errors.js'
import type { WireError } from '../protocol/errors.js'
import { FrameDecoder } from '../protocol/frame.js'
import { handlers } from './handlers.js'
import type { BrokerContext, HandlerResult } from './handlers.js'

class ClientConnection {
  readonly #socket: Socket
  readonly #ctx: BrokerContext
  readonly #decoder: FrameDecoder
  readonly #server: ClientServer
  #greeted = false
  #inflight = 0
  /** What the requests in flight may hold in memory (see the header). */
  #inflightBytes = 0
  /** Reading is paused for any reason: too many requests or bytes in flight, or too many answers unsent. */
  #paused = false
  #inflightFull = false
  #bytesFull = false
  #outputFull = false
  #closing = false
  #out: Uint8Array[] = []
  #flushScheduled = false

  constructor(socket: Socket, ctx: BrokerContext, server: ClientServer) {
    this.#socket = socket
    this.#ctx = ctx
    this.#server = server
    socket.setNoDelay(true)
    this.#decoder = new FrameDecoder({
      frame: (body) => this.#onFrame(body),
      error: (e) => this.#fatal(e),
    })
    socket.on('data', (chunk: Buffer) => this.#decoder.push(chunk))
    socket.on('error', (err) => ctx.log.debug({ err: err.message, remote: socket.remoteAddress }, 'client connection error'))
    socket.on('close', () => server.forget(this))
  }

  get inflight(): number {
    return this.#inflight
  }

  #onFrame(body: Uint8Array): void {
    if (this.#closing) return
    const parsed = parseRequest(body)
    if (!parsed.ok) {
      if (parsed.error.id === undefined) this.#fatal(rejectionResponse(parsed.error).error)
      else this.#send(rejectionResponse(parsed.error))
      return
    }
    const req = parsed.value
    if (!this.#greeted && req.api !== 'hello') {
      this.#send(errorResponse(req.id, wireError('HELLO_REQUIRED')))
      this.#close()
      return
    }
    if (this.#greeted && req.api === 'hello') {
      this.#send(errorResponse(req.id, wireError('INVALID_REQUEST', { reason: 'hello was already exchanged on this connection' })))
      return
    }
    if (req.api === 'hello') {
      // no version in common: answered here, before anything pipelined behind it runs, and
      // the connection closed (apis/hello.ts); the handler's own check stays for the body
      const v = negotiateVersion(req.body.versionMin, req.body.versionMax, PROTOCOL_VERSION_MIN, PROTOCOL_VERSION_MAX)
      if (!v.ok) {
        this.#send(errorResponse(req.id, { code: 'UNSUPPORTED_VERSION', message: v.error.message }))
        this.#close()
        return
      }
      this.#greeted = true
    }
    this.#inflight++
    const claim = body.byteLength + (req.api === 'fetch' ? Math.min(req.body.maxBytes, limits.fetch.responseBytesMax) : 0)
    this.#inflightBytes += claim
    if (this.#inflight >= limits.protocol.inflightRequestsMax && !this.#inflightFull) {
      this.#inflightFull = true
      this.#reading()
    }
    if (this.#inflightBytes > limits.protocol.inflightBytesMax && !this.#bytesFull) {
      this.#bytesFull = true
      this.#reading()
    }
    void this.#run(req, claim)
  }

  async #run(req: Request, claim: number): Promise<void> {
    let result: HandlerResult<ApiName>
    try {
      result = await (handlers[req.api] as (ctx: BrokerContext, body: unknown) => Promise<HandlerResult<ApiName>>)(this.#ctx, req.body)
    } catch (err) {
      this.#ctx.log.error({ err, api: req.api }, 'request handler failed')
      result = { ok: false, error: wireError('INTERNAL', { reason: err instanceof Error ? err.message : String(err) }) }
    }
    this.#inflight--
    this.#inflightBytes -= claim
    this.#send(result.ok ? okResponse(req.id, req.api, result.body) : errorResponse(req.id, result.error))
    if (this.#inflightFull && this.#inflight < limits.protocol.inflightRequestsMax / 2) {
      this.#inflightFull = false
      this.#reading()
    }
    if (this.#bytesFull && this.#inflightBytes <= limits.protocol.inflightBytesMax / 2) {
      this.#bytesFull = false
      this.#reading()
    }
    if (this.#server.draining && this.#inflight === 0) this.#close()
  }

  #send(response: object): void {
    if (this.#socket.destroyed) return
    const frame = encodeMessageFrame(response)
    if (!frame.ok) {
      // a response too large to frame: tell the client instead of sending it
      const id = (response as { id: number }).id
      const fallback = encodeMessageFrame(errorResponse(id, wireError('INTERNAL', { reason: frame.error.message })))
      if (fallback.ok) this.#out.push(fallback.value)
    } else {
      this.#out.push(frame.value)
    }
    if (this.#flushScheduled) return
    this.#flushScheduled = true
    queueMicrotask(() => this.#flush())
  }

  #flush(): void {
    this.#flushScheduled = false
    if (this.#out.length === 0 || this.#socket.destroyed) return
    const out = this.#out
    this.#out = []
    this.#socket.cork()
    for (const b of out) this.#socket.write(b)
    this.#socket.uncork()
    if (!this.#outputFull && this.#socket.writableLength > limits.protocol.unsentBytesMax) {
      // the client is not reading its answers: stop reading its requests until they drain
      this.#outputFull = true
      this.#reading()
      this.#socket.once('drain', () => {
        this.#outputFull = false
        this.#reading()
      })
    }
  }

  /** Pauses or resumes reading from the socket as the limits say. */
  #reading(): void {
    const stop = this.#inflightFull || this.#bytesFull || this.#outputFull
    if (stop === this.#paused) return
    this.#paused = stop
    if (stop) this.#socket.pause()
    else this.#socket.resume()
  }

  /** An error that leaves the stream unreadable: answer under id 0, then close. */
  #fatal(error: WireError): void {
    this.#send(errorResponse(CONNECTION_ERROR_ID, error))
    this.#close()
  }

  #close(): void {
    if (this.#closing) return
    this.#closing = true
    this.#decoder.stop()
    setImmediate(() => {
      this.#flush()
      this.#socket.end()
    })
  }

  drain(): void {
    if (this.#inflight === 0) this.#close()
  }

  destroy(): void {
    this.#socket.destroy()
  }
}

export class ClientServer {
  readonly #server: Server
  readonly #connections = new Set<ClientConnection>()
  draining = false

  private constructor(server: Server) {
    this.#server = server
  }

  static listen(ctx: BrokerContext, host: string, port: number): Promise<ClientServer> {
    return new Promise((resolve, reject) => {
      let cs: ClientServer
      let served = ctx
      const server = createServer((socket) => {
        if (cs.draining) {
          socket.destroy()
          return
        }
        cs.#connections.add(new ClientConnection(socket, served, cs))
      })
      cs = new ClientServer(server)
      server.once('error', reject)
      server.listen(port, host, () => {
        server.off('error', reject)
        // asked for port 0: the handlers (metadata) advertise the port the OS chose, not 0
        const bound = cs.address().port
        if (ctx.config.listen.port === 0 && bound !== 0) {
          served = { ...ctx, config: { ...ctx.config, listen: { host: ctx.config.listen.host, port: bound } } }
        }
        resolve(cs)
      })
    })
  }

  address(): { host: string; port: number } {
    const a = this.#server.address()
    if (a === null || typeof a === 'string') return { host: '', port: 0 }
    return { host: a.address, port: a.port }
  }

  forget(c: ClientConnection): void {
    this.#connections.delete(c)
  }

  /** Stops accepting, lets requests in flight finish (up to `timeoutMs`), then closes every connection. */
  async close(timeoutMs: number): Promise<void> {
    this.draining = true
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()))
    for (const c of this.#connections) c.drain()
    const deadline = Date.now() + timeoutMs
    while ([...this.#connections].some((c) => c.inflight > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
    for (const c of this.#connections) c.destroy()
    await closed
  }
}
