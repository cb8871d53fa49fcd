import { createConnection, createServer } from 'node:net'
import type { Server, Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { FaultProxy, delay, drop, oneWay, pass } from './fault-proxy.js'

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
const closers: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c()
})

/** A server that answers every chunk with `echo:<chunk>`; and a client through the proxy that collects what it gets. */
async function setup(): Promise<{ proxy: FaultProxy; client: Socket; got: () => string; server: Server; accepted: Socket[] }> {
  const accepted: Socket[] = []
  const server = createServer((s) => {
    accepted.push(s)
    s.on('data', (d) => s.write(`echo:${d.toString()}`))
    s.on('error', () => {})
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  const port = (server.address() as { port: number }).port
  const proxy = await FaultProxy.listen({ target: { host: '127.0.0.1', port } })
  const client = createConnection({ host: '127.0.0.1', port: proxy.port })
  client.on('error', () => {})
  let text = ''
  client.on('data', (d) => (text += d.toString()))
  await new Promise<void>((r) => client.once('connect', () => r()))
  closers.push(() => new Promise<void>((r) => server.close(() => r())), () => proxy.close(), () => void client.destroy())
  return { proxy, client, got: () => text, server, accepted }
}

async function until(fn: () => boolean, ms = 2_000): Promise<void> {
  for (const end = Date.now() + ms; !fn(); await sleep(10)) if (Date.now() > end) throw new Error('timed out')
}

describe('fault proxy - one node-to-node link under test control', () => {
  it('passes bytes both ways and counts them', async () => {
    const { proxy, client, got } = await setup()
    client.write('hi')
    await until(() => got() === 'echo:hi')
    expect(proxy.counts).toMatchObject({ connections: 1, bytes: { 'a->b': 2, 'b->a': 7 } })
  })

  it('drop holds both directions back without closing; healing delivers what waited, in order', async () => {
    const { proxy, client, got } = await setup()
    proxy.setMode(drop)
    client.write('one')
    client.write('two')
    await sleep(200)
    expect(got()).toBe('')
    expect(client.destroyed).toBe(false)
    expect(proxy.open).toBe(1)
    proxy.setMode(pass)
    await until(() => got().includes('two'))
    expect(got().replace(/echo:/g, '')).toBe('onetwo')
  })

  it('delay adds latency, in order', async () => {
    const { proxy, client, got } = await setup()
    proxy.setMode(delay(150))
    const t = performance.now()
    client.write('x')
    await until(() => got() === 'echo:x')
    expect(performance.now() - t).toBeGreaterThanOrEqual(280) // 150 ms each way
  })

  it('oneWay cuts one direction only', async () => {
    const { proxy, client, got, accepted } = await setup()
    client.write('a')
    await until(() => got() === 'echo:a')
    proxy.setMode(oneWay('b->a'))
    client.write('b') // reaches the server, its answer is held
    await sleep(150)
    expect(got()).toBe('echo:a')
    proxy.setMode(oneWay('a->b'))
    accepted[0]!.write('!') // the server's bytes pass now...
    client.write('c') // ...the client's are held
    await until(() => got().includes('!'))
    await sleep(100)
    expect(got()).toBe('echo:aecho:b!')
  })

  it('reset destroys current connections; new ones pass; close stops it', async () => {
    const { proxy, client } = await setup()
    const closed = new Promise<void>((r) => client.once('close', () => r()))
    proxy.reset()
    await closed
    expect(proxy.counts.resets).toBe(1)
    expect(proxy.open).toBe(0)
    await proxy.close()
    const refused = await new Promise<string>((r) => createConnection({ host: '127.0.0.1', port: proxy.port }).once('error', (e: NodeJS.ErrnoException) => r(e.code ?? '')))
    expect(refused).toBe('ECONNREFUSED')
  })
})
