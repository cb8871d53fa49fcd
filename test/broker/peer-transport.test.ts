/**
 * PeerTransport over loopback TCP: real transports talking to each other, and raw sockets
 * speaking the wire format by hand for what a real transport never sends (wrong HELLOs,
 * oversized lengths, a peer that goes silent, a second connection from the same node).
 * Ports are 0 (the OS picks); every test bounds its waits and closes what it opened.
 */
import { connect, createServer } from 'node:net'
import type { Server, Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { PeerTransport } from '../../src/broker/peer/index.js'
import type { PeerTransportOptions } from '../../src/broker/peer/index.js'
import {
  ControlType,
  PeerFrameDecoder,
  decodeHelloRefused,
  encodeFrame,
  encodeHello,
  encodeHelloOk,
} from '../../src/broker/peer/wire.js'
import type { Hello } from '../../src/broker/peer/wire.js'
import { freePort } from '../process/broker-process.js'

const HOST = '127.0.0.1'
const CLUSTER = 'test-cluster'
/** The address given for a lower-id peer, which is never dialed (it dials us). */
const NOWHERE = { host: HOST, port: 1 }
const enc = new TextEncoder()
const dec = new TextDecoder()

// ---------------------------------------------------------------------------------------
// Helpers

interface Line {
  level: 'info' | 'warn' | 'error' | 'debug'
  obj: Record<string, unknown>
  msg: string
}

class TestLog {
  readonly lines: Line[] = []
  info(obj: object, msg: string): void {
    this.#add('info', obj, msg)
  }
  warn(obj: object, msg: string): void {
    this.#add('warn', obj, msg)
  }
  error(obj: object, msg: string): void {
    this.#add('error', obj, msg)
  }
  debug(obj: object, msg: string): void {
    this.#add('debug', obj, msg)
  }
  #add(level: Line['level'], obj: object, msg: string): void {
    this.lines.push({ level, obj: obj as Record<string, unknown>, msg })
    if (process.env.PEER_TEST_LOG) console.log(level, msg, JSON.stringify(obj))
  }
  find(level: Line['level'], msg: string | RegExp): Line[] {
    return this.lines.filter((l) => l.level === level && (typeof msg === 'string' ? l.msg === msg : msg.test(l.msg)))
  }
}

/** A transport and everything it reported. */
interface Node {
  id: number
  t: PeerTransport
  log: TestLog
  /** Received messages as text, in arrival order. */
  got: { from: number; channel: number; text: string }[]
  ups: number[]
  downs: number[]
}

const opened: (() => Promise<void> | void)[] = []

afterEach(async () => {
  while (opened.length > 0) await opened.pop()!()
})

async function startNode(id: number, peers: Map<number, { host: string; port: number }>, o: Partial<PeerTransportOptions> = {}): Promise<Node> {
  const log = new TestLog()
  const node: Node = { id, t: undefined as unknown as PeerTransport, log, got: [], ups: [], downs: [] }
  const r = await PeerTransport.start({
    nodeId: id,
    clusterId: CLUSTER,
    listen: { host: HOST, port: 0 },
    peers,
    log,
    onMessage: (from, channel, payload) => void node.got.push({ from, channel, text: dec.decode(payload) }),
    onPeerUp: (p) => void node.ups.push(p),
    onPeerDown: (p) => void node.downs.push(p),
    backoffMinMs: 10,
    backoffMaxMs: 100,
    ...o,
  })
  if (!r.ok) throw new Error(r.error.message)
  node.t = r.value
  opened.push(() => r.value.close())
  return node
}

/** Nodes 1..n, started highest first so each lower node knows the address of every higher one. */
async function startCluster(n: number, o: Partial<PeerTransportOptions> = {}): Promise<Node[]> {
  const nodes: Node[] = []
  for (let id = n; id >= 1; id--) {
    const peers = new Map<number, { host: string; port: number }>()
    for (let other = 1; other <= n; other++) {
      if (other === id) continue
      peers.set(other, other < id ? NOWHERE : nodes.find((x) => x.id === other)!.t.address)
    }
    nodes.push(await startNode(id, peers, o))
  }
  nodes.reverse()
  await waitFor(() => nodes.every((x) => x.t.peersUp().length === n - 1), 5000, 'every node sees every peer up')
  return nodes
}

async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`)
    await sleep(5)
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

function turn(): Promise<void> {
  return new Promise((r) => setImmediate(r))
}

/** A port nothing listens on (it was free a moment ago). */
/** A hand-driven peer connection: raw frames out, decoded frames in. */
class Raw {
  readonly socket: Socket
  readonly frames: { channel: number; payload: Buffer }[] = []
  closed = false
  readonly #closedAt: Promise<void>

  constructor(socket: Socket) {
    this.socket = socket
    const decoder = new PeerFrameDecoder({ frame: (channel, payload) => void this.frames.push({ channel, payload: Buffer.from(payload) }), error: () => socket.destroy() }, 1 << 20)
    socket.on('data', (c: Buffer) => decoder.push(c))
    socket.on('error', () => {})
    this.#closedAt = new Promise((r) => socket.once('close', () => r()))
    socket.once('close', () => (this.closed = true))
    opened.push(() => {
      socket.destroy()
      return this.#closedAt
    })
  }

  static async dial(port: number): Promise<Raw> {
    const socket = connect({ host: HOST, port })
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve)
      socket.once('error', reject)
    })
    return new Raw(socket)
  }

  write(bytes: Uint8Array): void {
    this.socket.write(bytes)
  }

  hello(h: Partial<Hello> = {}): void {
    this.write(encodeFrame(0, encodeHello({ versionMin: 1, versionMax: 1, clusterId: CLUSTER, from: 1, to: 2, ...h })))
  }

  async waitFrame(pred: (f: { channel: number; payload: Buffer }) => boolean, timeoutMs = 2000): Promise<{ channel: number; payload: Buffer }> {
    await waitFor(() => this.frames.some(pred), timeoutMs, 'a raw peer receives the expected frame')
    return this.frames.find(pred)!
  }

  async waitClosed(timeoutMs = 2000): Promise<void> {
    await waitFor(() => this.closed, timeoutMs, 'the transport closes the raw connection')
  }
}

const isControl = (type: number) => (f: { channel: number; payload: Buffer }) => f.channel === 0 && f.payload[0] === type

/** Node 2 with peers 1 (a lower id, who dials it: the raw sockets pretend to be it) and 3. */
async function acceptor(o: Partial<PeerTransportOptions> = {}): Promise<Node> {
  return startNode(2, new Map([[1, NOWHERE], [3, NOWHERE]]), o)
}

/** A raw socket that completes the handshake with `node` as node 1. */
async function rawPeer(node: Node): Promise<Raw> {
  const raw = await Raw.dial(node.t.address.port)
  raw.hello()
  await raw.waitFrame(isControl(ControlType.HELLO_OK))
  await waitFor(() => node.t.isUp(1), 2000, 'node 2 sees the raw peer up')
  return raw
}

// ---------------------------------------------------------------------------------------

describe('peer transport - messages', () => {
  it('three nodes exchange messages on several channels, each stream in order', async () => {
    const nodes = await startCluster(3)
    for (const n of nodes) expect([...n.ups].sort()).toEqual(nodes.filter((x) => x !== n).map((x) => x.id))
    const channels = [1, 7, 255]
    const perStream = 300
    // spread over several turns, so both single-turn batches and many writes are exercised
    for (let i = 0; i < perStream; i++) {
      for (const n of nodes) for (const m of nodes) if (m !== n) for (const ch of channels) expect(n.t.send(m.id, ch, enc.encode(`${n.id}>${m.id}:${ch}:${i}`))).toBe(true)
      if (i % 50 === 0) await turn()
    }
    await waitFor(() => nodes.every((n) => n.got.length === 2 * channels.length * perStream), 5000, 'every message arrives')
    for (const n of nodes) {
      for (const m of nodes) {
        if (m === n) continue
        for (const ch of channels) {
          const stream = n.got.filter((g) => g.from === m.id && g.channel === ch).map((g) => g.text)
          expect(stream).toEqual(Array.from({ length: perStream }, (_, i) => `${m.id}>${n.id}:${ch}:${i}`))
        }
      }
      expect(n.t.stats().framesReceived).toBe(2 * channels.length * perStream)
      expect(n.t.stats().framesSent).toBe(2 * channels.length * perStream)
      expect(n.downs).toEqual([])
    }
  })

  it('sends to one peer within one turn leave as one socket write', async () => {
    const [a, b] = await startCluster(2, { pingMs: 10_000, idleTimeoutMs: 20_000 })
    const payload = new Uint8Array(100)
    const before = a!.t.stats()
    for (let i = 0; i < 1000; i++) {
      payload[0] = i & 0x7f // the transport copies at send time, so reusing the buffer is safe
      a!.t.send(2, 1 + (i % 3), payload)
    }
    await waitFor(() => b!.got.length === 1000, 5000, '1000 messages arrive')
    const one = a!.t.stats()
    expect(one.writes - before.writes).toBe(1)
    expect(one.framesSent - before.framesSent).toBe(1000)
    expect(one.bytesSent - before.bytesSent).toBe(1000 * (5 + 100))
    expect(b!.got.map((g) => g.text.charCodeAt(0))).toEqual(Array.from({ length: 1000 }, (_, i) => i & 0x7f))
    // the control: the same 1000 over four turns are four writes
    for (let k = 0; k < 4; k++) {
      for (let i = 0; i < 250; i++) a!.t.send(2, 1, payload)
      await turn()
    }
    await waitFor(() => b!.got.length === 2000, 5000, '1000 more arrive')
    expect(a!.t.stats().writes - one.writes).toBe(4)
  })

  it('a throwing onMessage is logged as an error and the connection stays', async () => {
    let calls = 0
    const c = await startNode(3, new Map([[1, NOWHERE]]), {
      onMessage: (_from, _ch, payload) => {
        calls++
        if (dec.decode(payload) === 'boom') throw new Error('caller bug')
      },
    })
    const a = await startNode(1, new Map([[3, c.t.address]]))
    await waitFor(() => a.t.isUp(3), 2000, 'node 1 is up with node 3')
    a.t.send(3, 1, enc.encode('boom'))
    a.t.send(3, 1, enc.encode('after'))
    await waitFor(() => calls === 2, 2000, 'both messages are delivered')
    const errors = c.log.find('error', /onMessage threw/)
    expect(errors).toHaveLength(1)
    expect(errors[0]!.obj).toMatchObject({ peer: 1, channel: 1, err: expect.stringMatching(/caller bug/) })
    expect(c.downs).toEqual([])
    expect(a.t.isUp(3)).toBe(true)
  })
})

describe('peer transport - handshake refusals', () => {
  const refusalOf = async (raw: Raw): Promise<string> => {
    const f = await raw.waitFrame(isControl(ControlType.HELLO_REFUSED))
    const r = decodeHelloRefused(f.payload)
    if (!r.ok) throw new Error(r.error.message)
    await raw.waitClosed()
    return r.value.code
  }

  it.each([
    ['WRONG_CLUSTER', { clusterId: 'another-cluster' }],
    ['UNKNOWN_NODE', { from: 9 }],
    ['WRONG_NODE', { to: 5 }],
    ['UNSUPPORTED_VERSION', { versionMin: 2, versionMax: 3 }],
    ['BAD_HANDSHAKE', { from: 3 }], // a higher id dialing: the pair would get two connections
  ] as const)('%s', async (code, hello) => {
    const node = await acceptor()
    const raw = await Raw.dial(node.t.address.port)
    raw.hello(hello)
    expect(await refusalOf(raw)).toBe(code)
    expect(node.t.peersUp()).toEqual([])
    expect(node.ups).toEqual([])
    expect(node.log.find('warn', 'refused a peer connection').map((l) => l.obj.code)).toEqual([code])
  })

  it.each([
    ['data before any HELLO', encodeFrame(1, enc.encode('hi'))],
    ['a channel-0 frame that is not a HELLO', encodeFrame(0, Uint8Array.of(ControlType.PING))],
    ['the wrong magic', encodeFrame(0, Uint8Array.of(ControlType.HELLO, 0x48, 0x54, 0x54, 0x50, 0, 1, 0, 1))],
    ['a truncated HELLO', encodeFrame(0, encodeHello({ versionMin: 1, versionMax: 1, clusterId: CLUSTER, from: 1, to: 2 }).subarray(0, 12))],
    ['a length too large for a handshake', Uint8Array.of(0, 1, 0, 0, 0)],
    ['an HTTP request', enc.encode('GET / HTTP/1.1\r\nHost: x\r\n\r\n')],
  ])('BAD_HANDSHAKE for %s', async (_what, bytes) => {
    const node = await acceptor()
    const raw = await Raw.dial(node.t.address.port)
    raw.write(bytes)
    expect(await refusalOf(raw)).toBe('BAD_HANDSHAKE')
    expect(node.t.peersUp()).toEqual([])
  })

  it('a transport refused by its peer logs the code once, keeps retrying, and connects once the config is right', async () => {
    // node 3 listens; node 1 is told node 2 lives at node 3's address, so it dials the wrong node
    const c = await startNode(3, new Map([[1, NOWHERE], [2, NOWHERE]]))
    const a = await startNode(1, new Map([[2, c.t.address]]), { backoffMinMs: 5, backoffMaxMs: 20 })
    await waitFor(() => a.log.find('debug', 'peer still unreachable').length >= 3, 3000, 'three more attempts are refused')
    // either side says so once: the acceptor's refusals are throttled per code and host, the dialer's by episode
    expect(c.log.find('warn', 'refused a peer connection').map((l) => l.obj.code)).toEqual(['WRONG_NODE'])
    const refused = a.log.find('error', /refused our connection/)
    expect(refused).toHaveLength(1)
    expect(refused[0]!.obj).toMatchObject({ peer: 2, code: 'WRONG_NODE' })
    expect(a.ups).toEqual([])
    expect(c.ups).toEqual([])
    // a wrong cluster id, between two real transports
    const d = await startNode(2, new Map([[1, NOWHERE]]), { clusterId: 'other' })
    await a.t.close()
    const e = await startNode(1, new Map([[2, d.t.address]]))
    await waitFor(() => e.log.find('error', /refused our connection/).length === 1, 2000, 'the dialer is refused')
    expect(e.log.find('error', /refused our connection/)[0]!.obj.code).toBe('WRONG_CLUSTER')
    expect(d.t.isUp(1)).toBe(false)
  })
})

describe('peer transport - limits', () => {
  it.each([
    ['a length over frameBytesMax', Uint8Array.of(0, 0, 0x10, 0x00, 1), /FRAME_TOO_LARGE/],
    ['a zero length', Uint8Array.of(0, 0, 0, 0), /EMPTY_FRAME/],
    ['an unknown transport message', encodeFrame(0, Uint8Array.of(99)), /unexpected transport message/],
    ['a second HELLO', encodeFrame(0, encodeHello({ versionMin: 1, versionMax: 1, clusterId: CLUSTER, from: 1, to: 2 })), /unexpected transport message/],
  ])('%s closes that connection with a warning, and the transport keeps serving others', async (_what, bytes, reason) => {
    // node 2 accepts the raw node 1 and dials the real node 3
    const c = await startNode(3, new Map([[1, NOWHERE], [2, NOWHERE]]))
    const b = await startNode(2, new Map([[1, NOWHERE], [3, c.t.address]]), { frameBytesMax: 1024 })
    await waitFor(() => b.t.isUp(3), 2000, 'node 2 is up with node 3')
    const raw = await rawPeer(b)
    raw.write(bytes)
    await raw.waitClosed()
    await waitFor(() => b.downs.includes(1), 2000, 'node 2 declares the raw peer down')
    const warn = b.log.find('warn', /protocol violation/)
    expect(warn).toHaveLength(1)
    expect(warn[0]!.obj.peer).toBe(1)
    expect(String(warn[0]!.obj.reason)).toMatch(reason)
    expect(b.t.send(3, 1, enc.encode('still here'))).toBe(true)
    await waitFor(() => c.got.some((g) => g.text === 'still here'), 2000, 'node 3 still hears from node 2')
    expect(b.t.peersUp()).toEqual([3])
  })

  it('a payload over frameBytesMax is dropped with an error; one at the limit goes', async () => {
    // above the handshake's own small frame limit, so the receiver must have raised it
    const [a, b] = await startCluster(2, { frameBytesMax: 4000 })
    expect(a!.t.send(2, 1, new Uint8Array(4001))).toBe(false)
    expect(a!.t.stats().dropped).toBe(1)
    expect(a!.log.find('error', /over frameBytesMax/)[0]!.obj).toMatchObject({ peer: 2, bytes: 4001, limit: 4000 })
    expect(a!.t.send(2, 1, new Uint8Array(4000))).toBe(true)
    await waitFor(() => b!.got.length === 1, 2000, 'the payload at the limit arrives')
    expect(b!.got[0]!.text.length).toBe(4000)
    expect(a!.t.isUp(2)).toBe(true)
  })

  it('sends past outboundBytesMax are dropped and counted, with one warning, and later sends go again', async () => {
    const [a, b] = await startCluster(2, { outboundBytesMax: 64 << 10 })
    const kib = new Uint8Array(1024)
    const results = Array.from({ length: 100 }, () => a!.t.send(2, 1, kib))
    const accepted = results.filter(Boolean).length
    // 1029 bytes a frame: 63 fit into 64 KiB, and once one is refused all the later ones are
    expect(accepted).toBe(63)
    expect(results.indexOf(false)).toBe(63)
    expect(a!.t.stats().dropped).toBe(37)
    expect(a!.log.find('warn', /not keeping up/)).toHaveLength(1)
    await waitFor(() => b!.got.length === 63, 2000, 'the accepted ones arrive')
    await sleep(20)
    expect(a!.t.send(2, 1, kib)).toBe(true)
    await waitFor(() => b!.got.length === 64, 2000, 'a later send arrives')
  })

  it('sends to a node that is not a peer, or to itself, are dropped', async () => {
    const [a] = await startCluster(2)
    expect(a!.t.send(9, 1, enc.encode('x'))).toBe(false)
    expect(a!.t.send(1, 1, enc.encode('x'))).toBe(false)
    expect(a!.t.stats().dropped).toBe(2)
    expect(() => a!.t.send(2, 0, enc.encode('x'))).toThrow(/channel 0/)
  })
})

describe('peer transport - peers added and removed while it runs', () => {
  it('an added higher-id peer is dialed and its messages flow; once removed its connection closes and it is not dialed again', async () => {
    const [a, b] = await startCluster(2)
    // node 3 knows 1 and 2 (it only accepts: both are lower); they learn of it later
    const c = await startNode(3, new Map([[1, NOWHERE], [2, NOWHERE]]))
    await sleep(50)
    expect(c.t.peersUp()).toEqual([])
    a!.t.addPeer(3, c.t.address)
    b!.t.addPeer(3, c.t.address)
    b!.t.addPeer(3, c.t.address) // again, same address: nothing changes
    await waitFor(() => c.t.peersUp().length === 2, 5000, 'node 3 is up with both')
    expect(a!.t.send(3, 1, enc.encode('hi 3'))).toBe(true)
    await waitFor(() => c.got.length === 1, 5000, 'node 3 got the message')
    expect(c.got[0]).toEqual({ from: 1, channel: 1, text: 'hi 3' })
    expect(b!.log.find('info', 'peer added').length).toBe(1)

    a!.t.removePeer(3)
    await waitFor(() => !a!.t.isUp(3) && !c.t.isUp(1), 5000, 'the link between 1 and 3 is down')
    expect(a!.t.send(3, 1, enc.encode('gone'))).toBe(false)
    // it stays removed: node 1 no longer dials it
    await sleep(200)
    expect(c.t.isUp(1)).toBe(false)
    expect(b!.t.isUp(3)).toBe(true)
  })

  it('a peer whose address changes is dialed at the new one', async () => {
    const [a] = await startCluster(1)
    const first = await startNode(2, new Map([[1, NOWHERE]]))
    a!.t.addPeer(2, first.t.address)
    await waitFor(() => a!.t.isUp(2), 5000, 'node 2 at its first address is up')
    await first.t.close()
    const second = await startNode(2, new Map([[1, NOWHERE]]))
    a!.t.addPeer(2, second.t.address)
    await waitFor(() => second.t.isUp(1), 5000, 'node 2 at its second address is up')
    expect(a!.log.find('info', 'peer address changed').length).toBe(1)
  })
})

describe('peer transport - failures and recovery', () => {
  it('sends while the peer is down return false; the dialer reconnects after the peer restarts on the same port', async () => {
    const [a, b] = await startCluster(2, { backoffMinMs: 10, backoffMaxMs: 40 })
    const port = b!.t.address.port
    await b!.t.close()
    await waitFor(() => a!.downs.includes(2), 2000, 'node 1 sees node 2 down')
    expect(a!.t.isUp(2)).toBe(false)
    const dropped = a!.t.stats().dropped
    expect(a!.t.send(2, 1, enc.encode('lost'))).toBe(false)
    expect(a!.t.stats().dropped).toBe(dropped + 1)
    // let several attempts fail: one warning for the episode, the retries at debug
    await waitFor(() => a!.log.find('debug', 'peer still unreachable').length >= 3, 3000, 'retries fail')
    expect(a!.log.find('warn', 'cannot reach peer; retrying with backoff')).toHaveLength(1)
    const b2 = await startNode(2, new Map([[1, NOWHERE]]), { listen: { host: HOST, port } })
    await waitFor(() => a!.t.isUp(2) && b2.t.isUp(1), 3000, 'the pair reconnects')
    expect(a!.ups).toEqual([2, 2])
    expect(a!.downs).toEqual([2])
    expect(a!.log.find('info', 'peer reachable again')).toHaveLength(1)
    expect(a!.t.send(2, 1, enc.encode('again'))).toBe(true)
    expect(b2.t.send(1, 2, enc.encode('back'))).toBe(true)
    await waitFor(() => b2.got.length === 1 && a!.got.length === 1, 2000, 'messages flow again')
    expect(b2.got[0]!.text).toBe('again')
    expect(a!.got[0]).toEqual({ from: 2, channel: 2, text: 'back' })
  })

  it('a peer that completes the handshake and then goes silent is declared down within idleTimeoutMs, though pinged', async () => {
    const idleTimeoutMs = 300
    const b = await acceptor({ pingMs: 50, idleTimeoutMs })
    const raw = await rawPeer(b)
    const upAt = performance.now()
    await waitFor(() => b.downs.includes(1), 2000, 'the silent peer is declared down')
    const tookMs = performance.now() - upAt
    expect(tookMs).toBeGreaterThanOrEqual(idleTimeoutMs - 10)
    expect(tookMs).toBeLessThan(idleTimeoutMs + 150) // timer lateness on a busy machine
    expect(raw.frames.filter(isControl(ControlType.PING)).length).toBeGreaterThanOrEqual(3)
    await raw.waitClosed()
    expect(b.t.isUp(1)).toBe(false)
  })

  it('a stall of our own event loop past idleTimeoutMs does not drop a peer whose bytes arrived meanwhile', async () => {
    const b = await acceptor({ pingMs: 50, idleTimeoutMs: 200 })
    const raw = await rawPeer(b)
    raw.write(encodeFrame(0, Uint8Array.of(ControlType.PING))) // reaches the kernel at once
    const until = performance.now() + 400
    while (performance.now() < until) {
      // the loop is blocked: node 2's idle deadline passes with the PING unread
    }
    await sleep(30)
    expect(b.downs).toEqual([])
    expect(b.t.isUp(1)).toBe(true)
  })

  it('an incoming connection that sends no HELLO is closed after idleTimeoutMs', async () => {
    const b = await acceptor({ pingMs: 50, idleTimeoutMs: 200 })
    const raw = await Raw.dial(b.t.address.port)
    const at = performance.now()
    await raw.waitClosed()
    expect(performance.now() - at).toBeGreaterThanOrEqual(190)
    expect(raw.frames).toEqual([]) // no PING before a handshake
    expect(b.log.find('warn', /sent no HELLO in time/)).toHaveLength(1)
  })

  it('two idle transports keep each other up with pings', async () => {
    const nodes = await startCluster(2, { pingMs: 30, idleTimeoutMs: 150 })
    const bytes = nodes.map((n) => n.t.stats().bytesSent)
    await sleep(600)
    for (const [i, n] of nodes.entries()) {
      expect(n.downs).toEqual([])
      expect(n.t.stats().bytesSent - bytes[i]!).toBeGreaterThanOrEqual(6 * 10) // a PING frame is 6 bytes
      expect(n.t.stats().framesSent).toBe(0)
    }
  })

  it('a dialer whose peer goes silent after the handshake declares it down and dials again', async () => {
    // a fake node 2 that answers every HELLO and then says nothing
    const accepted: Socket[] = []
    const server: Server = createServer((s) => {
      accepted.push(s)
      s.on('error', () => {})
      s.once('data', () => s.write(encodeFrame(0, encodeHelloOk(1))))
    })
    await new Promise<void>((r) => server.listen(0, HOST, r))
    opened.push(() => new Promise<void>((r) => {
      for (const s of accepted) s.destroy()
      server.close(() => r())
    }))
    const port = (server.address() as { port: number }).port
    const a = await startNode(1, new Map([[2, { host: HOST, port }]]), { pingMs: 40, idleTimeoutMs: 200 })
    await waitFor(() => a.downs.length >= 1, 2000, 'node 1 declares the silent node 2 down')
    await waitFor(() => accepted.length >= 2 && a.ups.length >= 2, 2000, 'node 1 dials again')
    expect(a.log.find('info', 'peer down')[0]!.obj).toMatchObject({ peer: 2, reason: expect.stringMatching(/idle timeout 200 ms/) })
  })

  it('a second connection from the same peer replaces the first', async () => {
    const b = await acceptor()
    const first = await rawPeer(b)
    const second = await Raw.dial(b.t.address.port)
    second.hello()
    await second.waitFrame(isControl(ControlType.HELLO_OK))
    await first.waitClosed()
    expect(b.ups).toEqual([1, 1])
    expect(b.downs).toEqual([1])
    expect(b.log.find('info', 'peer down')[0]!.obj.reason).toMatch(/replaced/)
    expect(b.t.send(1, 4, enc.encode('to the new one'))).toBe(true)
    const f = await second.waitFrame((x) => x.channel === 4)
    expect(dec.decode(f.payload)).toBe('to the new one')
    expect(b.t.peersUp()).toEqual([1])
  })
})

describe('peer transport - close', () => {
  it('close() closes every connection, fires onPeerDown, and leaves no handle: the port is free again', async () => {
    // what keeps the event loop alive (ref'd handles and timers), in a stable order
    const resources = (): string => process.getActiveResourcesInfo().sort().join(',')
    const withoutTcp = (r: string): string => r.split(',').filter((x) => !x.startsWith('TCP')).join(',')
    // a timer an earlier test left may fire meanwhile: what is held must be no more than the baseline, kind by kind
    const within = (r: string, base: string): boolean => {
      const count = (s: string): Map<string, number> => s.split(',').filter(Boolean).reduce((m, x) => m.set(x, (m.get(x) ?? 0) + 1), new Map<string, number>())
      const have = count(base)
      return [...count(r)].every(([kind, n]) => n <= (have.get(kind) ?? 0))
    }
    await waitFor(() => !resources().includes('TCP'), 5_000, 'the sockets of earlier tests are gone')
    const baseline = resources()
    // node 2 also has a peer 3 that is down, so its dialer sits in a backoff timer meanwhile
    const deadPort = await freePort()
    const fast = { pingMs: 20, idleTimeoutMs: 100, backoffMinMs: 5000, backoffMaxMs: 5000 }
    const b = await startNode(2, new Map([[1, NOWHERE], [3, { host: HOST, port: deadPort }]]), fast)
    const a = await startNode(1, new Map([[2, b.t.address]]), fast)
    await waitFor(() => a.t.isUp(2) && b.log.find('warn', /cannot reach peer/).length === 1, 2000, 'node 1 is up with node 2, and node 2 is waiting to dial node 3 again')
    const pending = await Raw.dial(b.t.address.port) // a connection still in its handshake
    await sleep(50) // pings go back and forth meanwhile
    const running = resources()
    expect(running.split(',').filter((x) => x.startsWith('TCP')).length).toBeGreaterThanOrEqual(5)
    expect(within(withoutTcp(running), withoutTcp(baseline)), `the transports hold no ref'd timer (${withoutTcp(running)} vs ${withoutTcp(baseline)})`).toBe(true)
    const port = b.t.address.port
    await Promise.all([a.t.close(), b.t.close()])
    expect(a.downs).toEqual([2])
    expect(b.downs).toEqual([1])
    expect(a.t.peersUp()).toEqual([])
    expect(a.t.send(2, 1, enc.encode('x'))).toBe(false)
    await pending.waitClosed()
    // libuv frees a closed handle in the loop iteration after its 'close' event
    await waitFor(() => within(resources(), baseline), 5_000, `only the baseline resources remain (${resources()} vs ${baseline})`)
    const again = createServer()
    await new Promise<void>((resolve, reject) => {
      again.once('error', reject)
      again.listen(port, HOST, resolve)
    })
    await new Promise<void>((r) => again.close(() => r()))
    await a.t.close() // a second close is harmless
  })

  it('close() stops dialing: a peer that comes up afterwards is never dialed', async () => {
    const port = await freePort()
    const a = await startNode(1, new Map([[2, { host: HOST, port }]]), { backoffMinMs: 20, backoffMaxMs: 20 })
    await waitFor(() => a.log.find('debug', 'peer still unreachable').length >= 2, 2000, 'node 1 keeps dialing the missing node 2')
    await a.t.close()
    let dialed = 0
    const late = createServer((s) => {
      dialed++
      s.destroy()
    })
    await new Promise<void>((r) => late.listen(port, HOST, r))
    await sleep(150) // several backoff periods
    await new Promise<void>((r) => late.close(() => r()))
    expect(dialed).toBe(0)
  })

  it('start() fails with LISTEN on a port in use', async () => {
    const [a] = await startCluster(2)
    const r = await PeerTransport.start({ nodeId: 5, clusterId: CLUSTER, listen: a!.t.address, peers: new Map(), log: new TestLog(), onMessage: () => {} })
    expect(r.ok).toBe(false)
    if (!r.ok) expect(r.error.code).toBe('LISTEN')
  })
})
