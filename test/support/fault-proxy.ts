/**
 * FaultProxy: a TCP proxy on loopback for ONE node-to-node link, which a test turns into
 * a network fault. It listens on its own port and forwards every connection to `target`;
 * side `a` is whoever connects (in raftmq the node with the lower id: it dials), side `b`
 * the target (the higher id's peer listener).
 *
 * Modes (`setMode`, effective at once for current and new connections):
 *   pass            bytes flow both ways
 *   drop            a partition: both directions are held back (the proxy stops reading,
 *                   so the bytes wait in kernel buffers and the senders' writes stall),
 *                   connections stay open — a black hole, noticed only by the nodes' own
 *                   idle timeouts (5 s), as across a real partition that TCP rides out
 *   delay(ms)       every chunk is delivered `ms` later than it arrived, in order
 *   oneWay(cut)     `cut` ('a->b' or 'b->a') is held back as in drop, the other way passes
 * and `reset()` destroys every current connection now (an RST to both nodes).
 *
 * Holding back by not reading, rather than reading and discarding, keeps each TCP stream
 * intact: a healed connection delivers what waited (late, like TCP after a partition) or
 * was closed by a node meanwhile; it never delivers a stream with a hole in it, which no
 * real network does. Bounded: at most `connectionsMax` connections (the oldest goes), at
 * most `delayedBytesMax` bytes waiting per direction in delay (then reading pauses), and
 * close() destroys everything and stops listening.
 *
 * Imports node:net only.
 */
import { createConnection, createServer } from 'node:net'
import type { Server, Socket } from 'node:net'

export type Direction = 'a->b' | 'b->a'
export type ProxyMode = { readonly kind: 'pass' } | { readonly kind: 'drop' } | { readonly kind: 'delay'; readonly ms: number } | { readonly kind: 'oneWay'; readonly cut: Direction }

export const pass: ProxyMode = { kind: 'pass' }
export const drop: ProxyMode = { kind: 'drop' }
export const delay = (ms: number): ProxyMode => ({ kind: 'delay', ms })
export const oneWay = (cut: Direction): ProxyMode => ({ kind: 'oneWay', cut })

export function describeMode(m: ProxyMode): string {
  return m.kind === 'delay' ? `delay(${m.ms} ms)` : m.kind === 'oneWay' ? `oneWay(cut ${m.cut})` : m.kind
}

export interface FaultProxyOptions {
  readonly target: { readonly host: string; readonly port: number }
  /** 0: the kernel picks. */
  readonly port?: number
  readonly connectionsMax?: number
  readonly delayedBytesMax?: number
}

export interface ProxyCounts {
  readonly connections: number
  readonly resets: number
  readonly bytes: { readonly 'a->b': number; readonly 'b->a': number }
}

/** One direction of one connection: reads `src`, writes `dst`, through the delay queue. */
class Pipe {
  readonly #src: Socket
  readonly #dst: Socket
  readonly #proxy: FaultProxy
  readonly #dir: Direction
  readonly #queue: Array<{ readonly at: number; readonly chunk: Buffer }> = []
  #queuedBytes = 0
  #timer: NodeJS.Timeout | undefined
  #dstFull = false

  constructor(proxy: FaultProxy, dir: Direction, src: Socket, dst: Socket) {
    this.#proxy = proxy
    this.#dir = dir
    this.#src = src
    this.#dst = dst
    src.on('data', (chunk: Buffer) => this.#onData(chunk))
    dst.on('drain', () => {
      this.#dstFull = false
      this.update()
    })
  }

  /** Reads or stops reading as the mode, the queue and the destination allow. */
  update(): void {
    const mode = this.#proxy.mode
    const cut = mode.kind === 'drop' || (mode.kind === 'oneWay' && mode.cut === this.#dir)
    const read = !cut && !this.#dstFull && this.#queuedBytes < this.#proxy.delayedBytesMax
    if (read) this.#src.resume()
    else this.#src.pause()
  }

  #onData(chunk: Buffer): void {
    const mode = this.#proxy.mode
    const ms = mode.kind === 'delay' ? mode.ms : 0
    if (ms === 0 && this.#queue.length === 0) return this.#write(chunk)
    const now = performance.now()
    const last = this.#queue[this.#queue.length - 1]?.at ?? 0
    this.#queue.push({ at: Math.max(now + ms, last), chunk })
    this.#queuedBytes += chunk.length
    this.update()
    this.#schedule()
  }

  #schedule(): void {
    if (this.#timer !== undefined || this.#queue.length === 0) return
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      const now = performance.now()
      while (this.#queue.length > 0 && this.#queue[0]!.at <= now + 1) {
        const { chunk } = this.#queue.shift()!
        this.#queuedBytes -= chunk.length
        this.#write(chunk)
      }
      this.update()
      this.#schedule()
    }, Math.max(0, this.#queue[0]!.at - performance.now()))
  }

  #write(chunk: Buffer): void {
    if (this.#dst.destroyed) return
    this.#proxy.counted(this.#dir, chunk.length)
    if (!this.#dst.write(chunk)) {
      this.#dstFull = true
      this.update()
    }
  }

  close(): void {
    clearTimeout(this.#timer)
    this.#queue.length = 0
    this.#queuedBytes = 0
  }
}

interface Conn {
  readonly a: Socket
  readonly b: Socket
  readonly pipes: readonly Pipe[]
}

export class FaultProxy {
  readonly target: { readonly host: string; readonly port: number }
  readonly connectionsMax: number
  readonly delayedBytesMax: number
  #mode: ProxyMode = pass
  readonly #server: Server
  readonly #conns = new Set<Conn>()
  #port = 0
  #closed = false
  #connections = 0
  #resets = 0
  readonly #bytes = { 'a->b': 0, 'b->a': 0 }

  private constructor(opts: FaultProxyOptions) {
    this.target = opts.target
    this.connectionsMax = opts.connectionsMax ?? 64
    this.delayedBytesMax = opts.delayedBytesMax ?? 4 << 20
    this.#server = createServer({ pauseOnConnect: true }, (a) => this.#accept(a))
  }

  static async listen(opts: FaultProxyOptions): Promise<FaultProxy> {
    const p = new FaultProxy(opts)
    await new Promise<void>((resolve, reject) => {
      p.#server.once('error', reject)
      p.#server.listen(opts.port ?? 0, '127.0.0.1', () => {
        const addr = p.#server.address()
        p.#port = typeof addr === 'object' && addr !== null ? addr.port : 0
        resolve()
      })
    })
    return p
  }

  get port(): number {
    return this.#port
  }

  get address(): string {
    return `127.0.0.1:${this.#port}`
  }

  get mode(): ProxyMode {
    return this.#mode
  }

  get counts(): ProxyCounts {
    return { connections: this.#connections, resets: this.#resets, bytes: { ...this.#bytes } }
  }

  /** Connections open now. */
  get open(): number {
    return this.#conns.size
  }

  setMode(mode: ProxyMode): void {
    if (mode.kind === 'delay' && !(mode.ms >= 0)) throw new RangeError(`delay ${mode.ms} ms`)
    this.#mode = mode
    for (const c of this.#conns) for (const p of c.pipes) p.update()
  }

  /** Destroys every current connection now (both nodes see a reset); the mode stays. */
  reset(): void {
    for (const c of [...this.#conns]) {
      this.#resets++
      this.#drop(c, true)
    }
  }

  /** Stops listening and destroys every connection. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    for (const c of [...this.#conns]) this.#drop(c, false)
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }

  /** @internal the pipes' byte counter */
  counted(dir: Direction, n: number): void {
    this.#bytes[dir] += n
  }

  #accept(a: Socket): void {
    if (this.#closed) return void a.destroy()
    this.#connections++
    const b = createConnection({ host: this.target.host, port: this.target.port })
    b.pause()
    const pipes = [new Pipe(this, 'a->b', a, b), new Pipe(this, 'b->a', b, a)]
    const conn: Conn = { a, b, pipes }
    this.#conns.add(conn)
    // one side gone: so is the other (half-open connections would only confuse the nodes)
    const gone = (): void => this.#drop(conn, false)
    for (const s of [a, b]) {
      s.on('error', gone)
      s.on('close', gone)
      s.on('end', gone)
      s.setNoDelay(true)
    }
    b.once('connect', () => {
      for (const p of pipes) p.update()
    })
    while (this.#conns.size > this.connectionsMax) this.#drop(this.#conns.values().next().value!, true)
  }

  #drop(c: Conn, reset: boolean): void {
    if (!this.#conns.delete(c)) return
    for (const p of c.pipes) p.close()
    for (const s of [c.a, c.b]) {
      if (reset && !s.destroyed && !s.connecting) s.resetAndDestroy()
      else s.destroy()
    }
  }
}
