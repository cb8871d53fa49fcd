/**
 * NodeConnections: the client's pool of connections, at most one per broker node, keyed
 * by node id, plus the one that serves requests any node may answer (admin, metadata).
 *
 * A node's connection is opened on demand from its advertised address and shared by
 * every request to that node; one that closed (the node died, the socket failed, hello
 * was refused) is dropped and the next request opens a fresh one. Concurrent requests to
 * a node whose connection is opening wait for that one attempt rather than each dialling.
 * A connection learns its node id from the hello answer, so the bootstrap connection
 * doubles as its node's connection: on a single node, routing opens nothing more.
 *
 * Events (ConnectionEvents): each connection that opens is a `connect` (a `reconnect` to
 * a node this pool had a connection to before), and each that closes while the pool is
 * in use a `disconnect` with why; closeAll() is not a disconnect.
 *
 * Invariants: every connection this pool opened is either in a slot or closed; once
 * closeAll() ran, nothing opens again and a connection that finishes opening afterwards
 * is closed at once.
 *
 * Imports protocol and ./ modules of the client.
 */
import type { NodeInfo } from '../protocol/api.js'
import { Connection } from './connection.js'
import type { ConnectionOptions } from './connection.js'
import { RaftmqError } from './errors.js'

export interface ConnectionEvent {
  readonly broker: string
  readonly nodeId: number
  /** disconnect: why the connection closed. */
  readonly error?: RaftmqError
}

export interface ConnectionEvents {
  connect(e: ConnectionEvent): void
  reconnect(e: ConnectionEvent): void
  disconnect(e: ConnectionEvent): void
}

export interface BrokerAddress {
  readonly host: string
  readonly port: number
}

interface Slot {
  /** Settles once: the open connection or why it could not open. */
  readonly opening: Promise<Connection>
  /** Set when `opening` resolved. */
  conn: Connection | null
}

const live = (s: Slot | undefined): Connection | null => (s?.conn && !s.conn.closed ? s.conn : null)

export class NodeConnections {
  readonly #bootstrap: readonly BrokerAddress[]
  readonly #opts: ConnectionOptions
  readonly #byNode = new Map<number, Slot>()
  /** The connection for requests any node may answer; often also a slot of #byNode. */
  #any: Slot | null = null
  /** Where the next search for any node starts in the bootstrap list, so a dead first entry is not dialled first forever. */
  #next = 0
  #closed: RaftmqError | null = null
  readonly #events: ConnectionEvents | null
  /** Nodes this pool has had a connection to: the next one is a reconnect. */
  readonly #seen = new Set<number>()

  constructor(bootstrap: readonly BrokerAddress[], opts: ConnectionOptions, events: ConnectionEvents | null = null) {
    this.#bootstrap = bootstrap
    this.#opts = opts
    this.#events = events
  }

  /** Node ids with an open connection (for tests and metrics). */
  openNodes(): number[] {
    return [...this.#byNode].filter(([, s]) => live(s) !== null).map(([id]) => id)
  }

  /**
   * The connection to node `id`, opened at `address` if there is none. Rejects with a
   * retriable CONNECTION_CLOSED when the node cannot be reached or no address is known,
   * so that the caller refreshes its metadata and retries.
   */
  forNode(id: number, address: NodeInfo | undefined): Promise<Connection> {
    if (this.#closed) return Promise.reject(this.#closed)
    const s = this.#byNode.get(id)
    const c = live(s)
    if (c) return Promise.resolve(c)
    if (s && s.conn === null) return s.opening
    this.#byNode.delete(id)
    if (!address) return Promise.reject(new RaftmqError('CONNECTION_CLOSED', `no address is known for node ${id}`))
    return this.#fill(id, this.#openNode(id, address))
  }

  /**
   * A connection to any node: the one used last if it is open, else any open one, else
   * the first of the bootstrap brokers and then of `known` nodes that answers.
   */
  any(known: readonly NodeInfo[]): Promise<Connection> {
    if (this.#closed) return Promise.reject(this.#closed)
    const a = this.#any
    if (a) {
      const c = live(a)
      if (c) return Promise.resolve(c)
      if (a.conn === null) return a.opening
    }
    for (const s of this.#byNode.values()) {
      if (live(s)) {
        this.#any = s
        return Promise.resolve(s.conn!)
      }
    }
    const slot: Slot = { opening: this.#search(known), conn: null }
    this.#any = slot
    slot.opening.then(
      (c) => (slot.conn = c),
      () => {
        if (this.#any === slot) this.#any = null
      },
    )
    return slot.opening
  }

  /** Closes every connection with `reason`; what is in flight on them fails with it. */
  closeAll(reason: RaftmqError): void {
    this.#closed = reason
    const slots = [...this.#byNode.values()]
    if (this.#any) slots.push(this.#any)
    this.#byNode.clear()
    this.#any = null
    for (const s of slots) void s.opening.then((c) => c.close(reason), () => {})
  }

  /** Puts an opening connection into node `id`'s slot; the slot empties itself if it fails. */
  #fill(id: number, opening: Promise<Connection>): Promise<Connection> {
    const slot: Slot = { opening, conn: null }
    this.#byNode.set(id, slot)
    opening.then(
      (c) => (slot.conn = c),
      () => {
        if (this.#byNode.get(id) === slot) this.#byNode.delete(id)
      },
    )
    return opening
  }

  async #openNode(id: number, address: BrokerAddress): Promise<Connection> {
    const c = await this.#open(address)
    if (c.server?.nodeId !== id) {
      // the address now belongs to another node (a restart with a new id): our metadata is stale
      c.close()
      throw new RaftmqError('CONNECTION_CLOSED', `${c.broker} answers as node ${c.server?.nodeId}, not node ${id}`)
    }
    return c
  }

  /** Opens a connection; one finishing after closeAll() is closed and refused. */
  async #open(address: BrokerAddress): Promise<Connection> {
    const c = await Connection.open(address.host, address.port, this.#opts)
    if (this.#closed) {
      c.close(this.#closed)
      throw this.#closed
    }
    const events = this.#events
    if (events !== null) {
      const nodeId = c.server?.nodeId ?? 0
      const again = this.#seen.has(nodeId)
      this.#seen.add(nodeId)
      // a listener that throws is the application's bug: it must not fail the request
      const tell = (f: () => void): void => {
        try {
          f()
        } catch {
          // ignored: see above
        }
      }
      tell(() => (again ? events.reconnect : events.connect)({ broker: c.broker, nodeId }))
      void c.whenClosed.then((error) => {
        if (!this.#closed) tell(() => events.disconnect({ broker: c.broker, nodeId, error }))
      })
    }
    return c
  }

  async #search(known: readonly NodeInfo[]): Promise<Connection> {
    const n = this.#bootstrap.length
    const candidates: { address: BrokerAddress; index: number }[] = []
    for (let i = 0; i < n; i++) {
      const index = (this.#next + i) % n
      candidates.push({ address: this.#bootstrap[index]!, index })
    }
    // the cluster's own nodes, when the bootstrap list is gone or out of date
    for (const node of known) {
      if (!this.#bootstrap.some((b) => b.host === node.host && b.port === node.port)) candidates.push({ address: node, index: -1 })
    }
    let last: unknown
    let notBrokers = 0
    for (const { address, index } of candidates) {
      try {
        const c = await this.#open(address)
        if (index >= 0) this.#next = index
        const id = c.server?.nodeId
        const s = id === undefined ? undefined : this.#byNode.get(id)
        // the same connection serves requests routed to its node: no second one to dial
        if (id !== undefined && (s === undefined || (s.conn !== null && s.conn.closed))) this.#fill(id, Promise.resolve(c))
        return c
      } catch (err) {
        if (this.#closed) throw this.#closed
        last = err
        if (err instanceof RaftmqError && err.code === 'NOT_A_BROKER') notBrokers++
      }
    }
    this.#next = (this.#next + 1) % n
    // nothing but other services at the addresses given: a configuration mistake, not worth retrying
    if (notBrokers === candidates.length && last instanceof RaftmqError) throw last
    const why = last instanceof Error ? last.message : String(last)
    throw new RaftmqError('CONNECTION_CLOSED', `no broker answered: ${why}`, { cause: last })
  }
}
