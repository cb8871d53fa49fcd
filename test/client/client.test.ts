/**
 * Client lifecycle: after close(), everything fails with CLIENT_CLOSED, which is not
 * retriable, so a producer stops at once instead of retrying into a closed client.
 */
import { createServer } from 'node:net'
import type { Server, Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { Client, RaftmqError } from '../../src/client/index.js'
import { isRetriable } from '../../src/protocol/errors.js'
import { decodeMessage, encodeMessageFrame } from '../../src/protocol/codec.js'
import { FrameDecoder } from '../../src/protocol/frame.js'

let server: Server | null = null
afterEach(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()))
  server = null
})

/** A broker that answers hello and then never answers anything else. */
async function silentBroker(): Promise<number> {
  const sockets: Socket[] = []
  server = createServer((socket) => {
    sockets.push(socket)
    const frames = new FrameDecoder({
      frame: (body) => {
        const m = decodeMessage(body)
        if (!m.ok) return
        const req = m.value as { id: number; api: string }
        if (req.api !== 'hello') return
        const limits = { frameBytesMax: 1 << 20, messageBytesMax: 1 << 20, batchBytesMax: 1 << 20 }
        const framed = encodeMessageFrame({ id: req.id, ok: true, body: { version: 1, nodeId: 1, server: 'silent', limits } })
        if (framed.ok) socket.write(framed.value)
      },
      error: () => socket.destroy(),
    })
    socket.on('data', (c: Buffer) => frames.push(c))
  })
  server.on('close', () => sockets.forEach((s) => s.destroy()))
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', () => resolve()))
  return (server.address() as { port: number }).port
}

describe('client - close', () => {
  it('CLIENT_CLOSED is not retriable', () => {
    expect(isRetriable('CLIENT_CLOSED')).toBe(false)
    expect(isRetriable('CONNECTION_CLOSED')).toBe(true)
  })

  it('a send after close fails with CLIENT_CLOSED, without retrying', async () => {
    const client = new Client({ brokers: ['127.0.0.1:1'] })
    await client.close()
    // retries with a long backoff: an attempt to retry would outlast the test
    const producer = client.producer({ retries: 5, retryBackoffMs: 60_000 })
    const e = await producer.send({ topic: 't', partition: 0, value: 'x' }).catch((err: unknown) => err)
    expect(e).toBeInstanceOf(RaftmqError)
    expect((e as RaftmqError).code).toBe('CLIENT_CLOSED')
  })

  it('a send in flight when the client closes fails with CLIENT_CLOSED, without retrying', async () => {
    const port = await silentBroker()
    const client = new Client({ brokers: [`127.0.0.1:${port}`] })
    const producer = client.producer({ retries: 5, retryBackoffMs: 60_000 })
    const sent = producer.send({ topic: 't', partition: 0, value: 'x' }).catch((err: unknown) => err)
    await new Promise((r) => setTimeout(r, 100)) // the request is on the wire, unanswered
    await client.close()
    const e = await sent
    expect((e as RaftmqError).code).toBe('CLIENT_CLOSED')
  })
})

/** A server that accepts connections and then does `behave` with each (write something, or nothing). */
async function otherServer(behave: (socket: Socket) => void): Promise<number> {
  const sockets: Socket[] = []
  server = createServer((socket) => {
    sockets.push(socket)
    socket.on('error', () => {})
    socket.resume() // reads (and drops) what arrives, so the client's close is seen
    behave(socket)
  })
  server.on('close', () => sockets.forEach((s) => s.destroy()))
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', () => resolve()))
  return (server.address() as { port: number }).port
}

async function failure(port: number, connectTimeoutMs: number): Promise<{ err: RaftmqError; ms: number }> {
  const client = new Client({ brokers: [`127.0.0.1:${port}`], connectTimeoutMs, requestTimeoutMs: 30_000 })
  const t0 = Date.now()
  try {
    const err = await client.metadata().then(
      () => null,
      (e: unknown) => e as RaftmqError,
    )
    expect(err).toBeInstanceOf(RaftmqError)
    return { err: err!, ms: Date.now() - t0 }
  } finally {
    await client.close()
  }
}

describe('client - servers that are not raftmq brokers', () => {
  it('an HTTP server is named NOT_A_BROKER, showing what it answered, and is not retried', async () => {
    const port = await otherServer((s) => s.once('data', () => s.end('HTTP/1.1 400 Bad Request\r\n\r\n')))
    const { err } = await failure(port, 2_000)
    expect(err.code).toBe('NOT_A_BROKER')
    expect(err.message).toContain(`127.0.0.1:${port} is not a raftmq broker`)
    expect(err.message).toContain('"HTTP/1.1 400 Bad Request')
    expect(isRetriable('NOT_A_BROKER')).toBe(false)
  })

  it('binary garbage is NOT_A_BROKER too, shown as hex', async () => {
    const port = await otherServer((s) => s.once('data', () => s.write(Buffer.from([0, 0, 0, 3, 0xff, 0xfe, 0xfd]))))
    const { err } = await failure(port, 2_000)
    expect(err.code).toBe('NOT_A_BROKER')
    expect(err.message).toContain('bytes 00000003fffefd')
  })

  it('a server that accepts and never answers fails within the connect timeout, not the request timeout', async () => {
    const port = await otherServer(() => {})
    const { err, ms } = await failure(port, 300)
    expect(err.code).toBe('CONNECTION_CLOSED')
    expect(err.message).toContain('did not answer the hello within 300 ms')
    expect(ms).toBeLessThan(10_000) // the request timeout is 30 s; a generous bound for a loaded machine
  })
})
