/**
 * Client: the entry point of the client library. It keeps one connection to a broker
 * from its bootstrap list (reconnecting on demand to the next one that answers), a
 * cache of topic metadata, and hands out Admin, Producer and Consumer objects that
 * share it.
 *
 * Imports base, protocol and ./ modules of the client.
 */
import type { ApiName, MetadataResponse, RequestBody, ResponseBody } from '../protocol/api.js'
import { formatMessage } from '../protocol/errors.js'
import { Connection } from './connection.js'
import { RaftmqError } from './errors.js'
import { Admin } from './admin.js'
import { Producer } from './producer.js'
import type { ProducerOptions } from './producer.js'
import { Consumer } from './consumer.js'
import type { ConsumerOptions } from './consumer.js'

export interface ClientOptions {
  /** Bootstrap brokers, `host:port`. */
  readonly brokers: readonly string[]
  readonly clientId?: string
  readonly connectTimeoutMs?: number
  readonly requestTimeoutMs?: number
}

const clientClosed = (): RaftmqError => new RaftmqError('CLIENT_CLOSED', formatMessage('CLIENT_CLOSED'))

export class Client {
  readonly #brokers: { host: string; port: number }[]
  readonly #opts: Required<Omit<ClientOptions, 'brokers'>>
  #conn: Promise<Connection> | null = null
  #next = 0
  readonly #partitions = new Map<string, number>()
  #closed = false

  constructor(opts: ClientOptions) {
    if (opts.brokers.length === 0) throw new RangeError('Client: brokers must list at least one host:port')
    this.#brokers = opts.brokers.map((b) => {
      const m = /^(.+):(\d+)$/.exec(b)
      if (!m) throw new RangeError(`Client: broker ${JSON.stringify(b)} is not host:port`)
      return { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) }
    })
    this.#opts = {
      clientId: opts.clientId ?? 'raftmq-client',
      connectTimeoutMs: opts.connectTimeoutMs ?? 5_000,
      requestTimeoutMs: opts.requestTimeoutMs ?? 30_000,
    }
  }

  /** Sends one request on the shared connection (opening it if needed). */
  async request<A extends ApiName>(api: A, body: RequestBody<A>, timeoutMs?: number): Promise<ResponseBody<A>> {
    const conn = await this.#connection()
    return conn.request(api, body, timeoutMs)
  }

  #connection(): Promise<Connection> {
    if (this.#closed) return Promise.reject(clientClosed())
    if (this.#conn) {
      const current = this.#conn
      return current.then(
        (c) => (c.closed ? this.#reconnect(current) : c),
        () => this.#reconnect(current),
      )
    }
    return this.#reconnect(null)
  }

  #reconnect(failed: Promise<Connection> | null): Promise<Connection> {
    if (this.#conn !== failed && this.#conn) return this.#conn
    this.#conn = (async () => {
      let last: unknown
      for (let i = 0; i < this.#brokers.length; i++) {
        const b = this.#brokers[(this.#next + i) % this.#brokers.length]!
        try {
          const c = await Connection.open(b.host, b.port, this.#opts)
          this.#next = (this.#next + i) % this.#brokers.length
          return c
        } catch (err) {
          last = err
        }
      }
      this.#next = (this.#next + 1) % this.#brokers.length
      throw last instanceof RaftmqError ? last : new RaftmqError('CONNECTION_CLOSED', `no broker answered: ${String(last)}`, { cause: last })
    })()
    return this.#conn
  }

  async metadata(topics?: string[]): Promise<MetadataResponse> {
    const md = await this.request('metadata', topics ? { topics } : {})
    for (const t of md.topics) if (!t.error) this.#partitions.set(t.name, t.partitions.length)
    return md
  }

  /** The number of partitions of `topic` (from the cache, or asked once). */
  async partitionCount(topic: string): Promise<number> {
    const known = this.#partitions.get(topic)
    if (known !== undefined) return known
    const md = await this.metadata([topic])
    const t = md.topics[0]
    if (!t || t.error) throw t?.error ? RaftmqError.from(t.error) : new RaftmqError('UNKNOWN_TOPIC', `topic ${topic} does not exist`)
    return t.partitions.length
  }

  forgetTopic(topic: string): void {
    this.#partitions.delete(topic)
  }

  admin(): Admin {
    return new Admin(this)
  }

  producer(opts: ProducerOptions = {}): Producer {
    return new Producer(this, opts)
  }

  consumer(opts: ConsumerOptions = {}): Consumer {
    return new Consumer(this, opts)
  }

  async close(): Promise<void> {
    this.#closed = true
    const c = this.#conn
    this.#conn = null
    // what is in flight fails for good: a producer must not retry into a closed client
    if (c) await c.then((conn) => conn.close(clientClosed()), () => {})
  }
}
