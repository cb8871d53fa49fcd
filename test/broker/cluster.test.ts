import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { Client } from '../../src/client/index.js'
import { encodeRecordBatch } from '../../src/protocol/record-batch.js'
import { Cleanups } from '../support/node.js'
import { startClusterNodes } from '../support/cluster-nodes.js'
import { clusterStatus, rebalanceLeaders } from '../../src/cli/cluster-status.js'
import { drainPlan, runMoves } from '../../src/cli/moves.js'

const cleanups = new Cleanups()
afterEach(() => cleanups.run())

async function leaderOf(client: Client, topic: string, partition: number, timeoutMs = 10_000): Promise<number> {
  const until = Date.now() + timeoutMs
  for (;;) {
    const md = await client.metadata([topic])
    const l = md.topics[0]?.partitions[partition]?.leader
    if (l != null) return l
    if (Date.now() > until) throw new Error(`no leader for ${topic}/${partition}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

describe('cluster of three nodes on loopback', () => {
  it('creates a replicated topic through any node; its leader takes writes; another leads after the leader stops', async () => {
    const c = await startClusterNodes(cleanups, 3)
    const admin = new Client({ brokers: [c.broker(2)] })
    cleanups.add(() => admin.close())
    await admin.admin().createTopic({ name: 'orders', partitions: 3, replicationFactor: 3 })
    const md = await admin.metadata(['orders'])
    expect(md.nodes.map((n) => n.id)).toEqual([1, 2, 3])
    expect(md.topics[0]!.partitions.map((p) => [...p.replicas].sort())).toEqual([
      [1, 2, 3],
      [1, 2, 3],
      [1, 2, 3],
    ])
    // the preferred leaders are spread, and leadership goes back to them: one partition led by each node
    let leaders: number[] = []
    for (const until = Date.now() + 10_000; Date.now() < until; await new Promise((r) => setTimeout(r, 50))) {
      leaders = await Promise.all([0, 1, 2].map((p) => leaderOf(admin, 'orders', p)))
      if (new Set(leaders).size === 3) break
    }
    expect(new Set(leaders).size).toBe(3)

    const l0 = leaders[0]!
    const toLeader = new Client({ brokers: [c.broker(l0)] })
    cleanups.add(() => toLeader.close())
    const producer = toLeader.producer()
    const sent = await producer.sendBatch(Array.from({ length: 50 }, (_, i) => ({ topic: 'orders', partition: 0, value: `m${i}` })))
    expect(sent.results.every((r) => 'offset' in r)).toBe(true)

    // describeTopic answers from any node, with each partition's offsets as its leader knows them
    const described = await admin.admin().describeTopic('orders')
    expect(described.partitions.map((p) => p.highWatermark)).toEqual([50, 0, 0])
    // a follower refuses with the leader's id
    const follower = c.ids.find((id) => id !== l0)!
    const toFollower = new Client({ brokers: [c.broker(follower)] })
    cleanups.add(() => toFollower.close())
    const asked = await toFollower.request('produce', { timeoutMs: 5_000, partitions: [{ topic: 'orders', partition: 0, batch: encodeRecordBatch([{ value: new TextEncoder().encode('x') }]) }] })
    expect(asked.partitions[0]).toMatchObject({ error: { code: 'NOT_LEADER', leader: l0 } })

    await c.stop(l0)
    const next = await (async () => {
      const until = Date.now() + 10_000
      for (;;) {
        const l = await leaderOf(toFollower, 'orders', 0)
        if (l !== l0) return l
        if (Date.now() > until) throw new Error('no new leader')
        await new Promise((r) => setTimeout(r, 50))
      }
    })()
    const toNext = new Client({ brokers: [c.broker(next)] })
    cleanups.add(() => toNext.close())
    const more = await toNext.producer().send({ topic: 'orders', partition: 0, value: 'after' })
    expect(more.offset).toBe(50)
    const page = await toNext.consumer().fetch({ topic: 'orders', partition: 0, offset: 0, maxBytes: 1 << 20 })
    expect(page.messages.map((m) => new TextDecoder().decode(m.value!))).toEqual([...Array.from({ length: 50 }, (_, i) => `m${i}`), 'after'])

    // the old leader comes back as a follower and catches up (and, as the preferred replica,
    // may soon lead again: leadership goes back to it once it has caught up)
    const applied = (await toNext.requestNode(next, 'describeCluster', {}, 5_000)).groups.find((g) => g.topic === 'orders' && g.partition === 0)!.applied
    await c.start(l0)
    const back = new Client({ brokers: [c.broker(l0)] })
    cleanups.add(() => back.close())
    const until = Date.now() + 10_000
    for (;;) {
      const leader = (await back.metadata(['orders'])).topics[0]!.partitions[0]!.leader
      const mine = (await back.requestNode(l0, 'describeCluster', {}, 5_000)).groups.find((g) => g.topic === 'orders' && g.partition === 0)
      if ((leader === next || leader === l0) && mine !== undefined && mine.applied >= applied) break
      if (Date.now() > until) throw new Error(`the restarted node does not know a leader or has not caught up (leader ${leader}, applied ${mine?.applied} of ${applied})`)
      await new Promise((r) => setTimeout(r, 50))
    }
  }, 60_000)
})

describe('cluster - clients that follow leaders', () => {
  it('a client bootstrapped from one node sends every partition to its leader, through a leader stopping, with nothing lost or stored twice', async () => {
    const c = await startClusterNodes(cleanups, 3)
    const client = new Client({ brokers: [c.broker(1)] })
    cleanups.add(() => client.close())
    await client.admin().createTopic({ name: 'events', partitions: 3, replicationFactor: 3 })
    const producer = client.producer({ idempotent: true, retries: 100, retryBackoffMs: 20 })
    const acked: { partition: number; offset: number; value: string }[] = []
    let n = 0
    const round = async (): Promise<void> => {
      const batch = Array.from({ length: 30 }, (_, i) => ({ topic: 'events', partition: i % 3, value: `v${n++}` }))
      const r = await producer.sendBatch(batch)
      r.results.forEach((res, i) => {
        if (!('offset' in res)) throw new Error(`${batch[i]!.value}: ${res.error.code}`)
        acked.push({ partition: res.partition, offset: res.offset, value: batch[i]!.value })
      })
    }
    for (let i = 0; i < 5; i++) await round()
    const md = await client.metadata(['events'])
    const victim = md.topics[0]!.partitions[0]!.leader!
    const during = (async () => {
      for (let i = 0; i < 10; i++) await round()
    })()
    await c.stop(victim)
    await during
    await c.start(victim)
    for (let i = 0; i < 5; i++) await round()
    const consumer = client.consumer()
    for (const p of [0, 1, 2]) {
      const mine = acked.filter((a) => a.partition === p).sort((a, b) => a.offset - b.offset)
      const page = await consumer.fetch({ topic: 'events', partition: p, offset: 0, maxBytes: 8 << 20 })
      const stored = page.messages.map((m) => ({ offset: m.offset, value: new TextDecoder().decode(m.value!) }))
      expect(stored).toEqual(mine.map((a) => ({ offset: a.offset, value: a.value })))
    }
    expect(acked.length).toBe(20 * 30)
  }, 60_000)
})

describe('cluster - status', () => {
  it('shows every node and partition; a stopped node is not answering, its replicas silent, and the status says so', async () => {
    const c = await startClusterNodes(cleanups, 3)
    const client = new Client({ brokers: c.brokers() })
    cleanups.add(() => client.close())
    await client.admin().createTopic({ name: 's', partitions: 3, replicationFactor: 3 })
    let healthy = await clusterStatus(client)
    for (const until = Date.now() + 10_000; healthy.degraded && Date.now() < until; await new Promise((r) => setTimeout(r, 100))) healthy = await clusterStatus(client)
    expect(healthy.degraded).toBe(false)
    expect(healthy.text).toMatch(/^1 +127\.0\.0\.1:\d+ +up +2,3 /m)
    expect(healthy.text.match(/^s +\d +\d +\S+ +\d+ +\d+ +.* ok(, quiet)?$/gm)?.length).toBe(3)
    await c.stop(3)
    let down = await clusterStatus(client)
    for (const until = Date.now() + 15_000; !/silent/.test(down.text) && Date.now() < until; await new Promise((r) => setTimeout(r, 200))) down = await clusterStatus(client)
    expect(down.degraded).toBe(true)
    expect(down.text).toMatch(/^3 +127\.0\.0\.1:\d+ +not answering/m)
    expect(down.text).toMatch(/3:\d+ \(silent\)/)
  }, 60_000)
})

describe('cluster - rebalance', () => {
  it('after a node comes back, raftmq cluster rebalance leaves every partition led by its preferred replica and shows the leaders before and after', async () => {
    const c = await startClusterNodes(cleanups, 3)
    const client = new Client({ brokers: c.brokers() })
    cleanups.add(() => client.close())
    await client.admin().createTopic({ name: 'r', partitions: 3, replicationFactor: 3 })
    const preferredLeads = async (): Promise<boolean> => (await client.metadata(['r'])).topics[0]!.partitions.every((p) => p.leader === p.replicas[0])
    for (const until = Date.now() + 10_000; !(await preferredLeads()) && Date.now() < until; ) await new Promise((r) => setTimeout(r, 50))
    expect(await preferredLeads()).toBe(true)
    await c.stop(1)
    await c.start(1)
    // until node 1 has caught up the command has nothing to hand it (and its leaders may do it themselves meanwhile)
    let r = await rebalanceLeaders(client, 10_000)
    for (const until = Date.now() + 15_000; !/^1 +\d+ +1$/m.test(r.text) && Date.now() < until; ) r = await rebalanceLeaders(client, 2_000)
    expect(r.text).toMatch(/^1 +\d+ +1$/m)
    expect(r.text).toMatch(/0 partitions still led by a replica other than the preferred one/)
    expect(await preferredLeads()).toBe(true)
  }, 60_000)
})

describe('cluster - topics', () => {
  it('a replication factor above the live nodes is refused with INVALID_REPLICATION_FACTOR; deleting a topic removes its replicas on every node', async () => {
    const c = await startClusterNodes(cleanups, 3)
    const client = new Client({ brokers: c.brokers() })
    cleanups.add(() => client.close())
    await expect(client.admin().createTopic({ name: 'big', partitions: 1, replicationFactor: 4 })).rejects.toMatchObject({ code: 'INVALID_REPLICATION_FACTOR' })
    await client.admin().createTopic({ name: 'gone', partitions: 2, replicationFactor: 3 })
    const groupDirs = async (id: number): Promise<string[]> => (await readdir(join(c.dataDir(id), 'groups'))).sort()
    for (const id of c.ids) expect(await groupDirs(id)).toEqual(['0', '1', '2'])
    await client.admin().deleteTopic('gone')
    for (const id of c.ids) {
      for (const until = Date.now() + 10_000; (await groupDirs(id)).length > 1 && Date.now() < until; ) await new Promise((r) => setTimeout(r, 50))
      expect(await groupDirs(id)).toEqual(['0'])
    }
    // with a node down, a topic of 3 replicas cannot be placed
    await c.stop(3)
    await new Promise((r) => setTimeout(r, 200)) // a clean stop closes its peer connections: its peers see it down at once
    await expect(client.admin().createTopic({ name: 'three', partitions: 1, replicationFactor: 3 })).rejects.toMatchObject({ code: 'INVALID_REPLICATION_FACTOR' })
    await client.admin().createTopic({ name: 'two', partitions: 1, replicationFactor: 2 })
  }, 60_000)
})

describe('cluster - idle partitions go quiet', () => {
  /** Every replica of `topic` on the nodes in `ids`, as those nodes report them. */
  async function replicas(client: Client, ids: readonly number[], topic: string): Promise<{ node: number; partition: number; role: string; quiet: boolean }[]> {
    const out: { node: number; partition: number; role: string; quiet: boolean }[] = []
    for (const id of ids) {
      const r = await client.requestNode(id, 'describeCluster', {}, 5_000)
      for (const g of r.groups) if (g.topic === topic) out.push({ node: id, partition: g.partition, role: g.role, quiet: g.quiet })
    }
    return out
  }

  async function allQuiet(client: Client, ids: readonly number[], topic: string, expected: number, timeoutMs = 10_000): Promise<void> {
    const until = Date.now() + timeoutMs
    for (;;) {
      const rs = await replicas(client, ids, topic)
      if (rs.length === expected && rs.every((r) => r.quiet)) return
      if (Date.now() > until) throw new Error(`not quiet: ${JSON.stringify(rs.filter((r) => !r.quiet))}`)
      await new Promise((r) => setTimeout(r, 50))
    }
  }

  it('stop ticking once idle, wake for a produce, and elect a new leader at once when a quiet leader goes away', async () => {
    const c = await startClusterNodes(cleanups, 3)
    const client = new Client({ brokers: c.brokers() })
    cleanups.add(() => client.close())
    await client.admin().createTopic({ name: 'calm', partitions: 3, replicationFactor: 3 })
    const producer = client.producer({ retries: 100, retryBackoffMs: 20 })
    for (const p of [0, 1, 2]) await producer.send({ topic: 'calm', partition: p, value: `first-${p}` })
    await allQuiet(client, c.ids, 'calm', 9)
    const status = await clusterStatus(client)
    expect(status.text).toContain('ok, quiet')

    // a produce wakes the partition; it is acknowledged by a majority and goes quiet again
    const woke = await producer.send({ topic: 'calm', partition: 0, value: 'wake' })
    expect(woke.offset).toBe(1)
    await allQuiet(client, c.ids, 'calm', 9)

    // the quiet leader of partition 1 stops: the others hear its connections close and elect one of them
    const old = await leaderOf(client, 'calm', 1)
    await c.stop(old)
    const rest = c.ids.filter((id) => id !== old)
    const until = Date.now() + 10_000
    let next = 0
    while (next === 0) {
      const rs = await replicas(client, rest, 'calm')
      next = rs.find((r) => r.partition === 1 && r.role === 'leader')?.node ?? 0
      if (next === 0 && Date.now() > until) throw new Error('no new leader for a quiet partition whose leader stopped')
      if (next === 0) await new Promise((r) => setTimeout(r, 20))
    }
    expect(rest).toContain(next)
    const after = await producer.send({ topic: 'calm', partition: 1, value: 'after' })
    expect(after.offset).toBe(1)
    const page = await client.consumer().fetch({ topic: 'calm', partition: 1, offset: 0, maxBytes: 1 << 20 })
    expect(page.messages.map((m) => new TextDecoder().decode(m.value!))).toEqual(['first-1', 'after'])
  }, 60_000)
})

describe('cluster - moving partitions', () => {
  it('moves a partition to another node while a producer writes to it (the joining replica past the leader log, so by snapshot), and drains a node; nothing is lost or stored twice, and the old replicas are removed', async () => {
    // a log view of 100 entries: the joining replicas are past it, and catch up by snapshot
    const c = await startClusterNodes(cleanups, 3, { logLevel: process.env.MOVE_LOG ?? 'warn', viewEntriesMax: '100' })
    const client = new Client({ brokers: c.brokers() })
    cleanups.add(() => client.close())
    await client.admin().createTopic({ name: 'moving', partitions: 2, replicationFactor: 2 })
    const md = await client.metadata(['moving'])
    const from = [...md.topics[0]!.partitions[0]!.replicas]
    const spare = c.ids.find((id) => !from.includes(id))!
    const groupId = (await client.requestNode(from[0]!, 'describeCluster', {}, 5_000)).groups.find((g) => g.topic === 'moving' && g.partition === 0)!.groupId

    // a steady idempotent producer on partition 0 throughout
    const producer = client.producer({ idempotent: true, retries: 200, retryBackoffMs: 20 })
    const acked: { offset: number; value: string }[] = []
    let stop = false
    let n = 0
    const writing = (async () => {
      while (!stop) {
        const batch = Array.from({ length: 20 }, () => ({ topic: 'moving', partition: 0, value: `m${n++}` }))
        const r = await producer.sendBatch(batch)
        r.results.forEach((res, i) => {
          if (!('offset' in res)) throw new Error(`${batch[i]!.value}: ${res.error.code} ${res.error.message}`)
          acked.push({ offset: res.offset, value: batch[i]!.value })
        })
      }
    })()
    while (acked.length < 20 * 250) await new Promise((r) => setTimeout(r, 20))

    // partition 0: its first replica is replaced by the spare node, which becomes its preferred leader
    const to = [spare, from[1]!]
    const moved = await runMoves(client, [{ topic: 'moving', partition: 0, from, to }], 30_000)
    expect(moved.text).toContain('done')
    expect(moved.failed).toBe(false)
    const after = await client.metadata(['moving'])
    expect(after.topics[0]!.partitions[0]).toMatchObject({ replicas: to })
    expect(after.topics[0]!.partitions[0]!.target).toBeUndefined()
    // the node that left holds no replica of it any more, and its data is gone
    const gone = from[0]!
    for (const until = Date.now() + 10_000; ; await new Promise((r) => setTimeout(r, 50))) {
      const hosted = (await client.requestNode(gone, 'describeCluster', {}, 5_000)).groups.some((g) => g.groupId === groupId)
      if (!hosted) break
      if (Date.now() > until) throw new Error(`node ${gone} still hosts the moved partition`)
    }
    expect(await readdir(join(c.dataDir(gone), 'groups')).then((ds) => ds.includes(String(groupId)))).toBe(false)
    // it still routes to the partition's leader, and describes it with the leader's offsets
    const fromGone = new Client({ brokers: [c.broker(gone)] })
    cleanups.add(() => fromGone.close())
    const leaderNow = (await fromGone.metadata(['moving'])).topics[0]!.partitions[0]!.leader
    expect(to).toContain(leaderNow)
    // what was acknowledged before asking (the producer goes on meanwhile)
    const ackedBefore = acked.length
    expect((await fromGone.admin().describeTopic('moving')).partitions[0]!.highWatermark).toBeGreaterThanOrEqual(ackedBefore)

    // draining the spare takes both partitions' replicas off it (each to the node holding fewest)
    const plan = drainPlan(await client.metadata(), spare)
    expect(plan.stuck).toEqual([])
    expect(plan.moves.map((m) => m.to.includes(spare))).toEqual(plan.moves.map(() => false))
    const drained = await runMoves(client, plan.moves, 30_000)
    expect(drained.failed).toBe(false)
    stop = true
    await writing
    const final = await client.metadata(['moving'])
    for (const p of final.topics[0]!.partitions) expect(p.replicas).not.toContain(spare)

    // every acknowledged message once, in order, at its offset, served by the new leader
    const stored: { offset: number; value: string }[] = []
    for (let at = 0; ; ) {
      const page = await client.consumer().fetch({ topic: 'moving', partition: 0, offset: at, maxBytes: 8 << 20 })
      for (const m of page.messages) stored.push({ offset: m.offset, value: new TextDecoder().decode(m.value!) })
      if (page.messages.length === 0 || stored.length >= acked.length) break
      at = page.messages[page.messages.length - 1]!.offset + 1
    }
    expect(stored.length).toBe(acked.length)
    expect(stored).toEqual([...acked].sort((a, b) => a.offset - b.offset))
  }, 120_000)
})

describe('cluster - a node joins the running cluster', () => {
  it('node 4 is added, receives the metadata, takes a moved partition and new replicas, survives restarts on both sides, and leaves once drained', async () => {
    const c = await startClusterNodes(cleanups, 3, {}, 1)
    const client = new Client({ brokers: c.brokers() })
    cleanups.add(() => client.close())
    const admin = client.admin()
    await admin.createTopic({ name: 'grow', partitions: 2, replicationFactor: 3 })
    const sent = await client.producer().sendBatch(Array.from({ length: 20 }, (_, i) => ({ topic: 'grow', partition: 0, value: `g${i}` })))
    expect(sent.results.every((r) => 'offset' in r)).toBe(true)

    // refusals first: an id a started node has, and one below the metadata group's voters
    await expect(admin.addNode(2, c.peer(4))).rejects.toMatchObject({ code: 'INVALID_NODE' })
    await expect(admin.removeNode(4)).rejects.toMatchObject({ code: 'INVALID_NODE' })

    // node 4 starts before it is added: it waits (nobody dials it yet), then the add lets it in
    const starting = c.start(4)
    await new Promise((r) => setTimeout(r, 300))
    await admin.addNode(4, c.peer(4))
    await starting
    const registered = async (present: boolean): Promise<void> => {
      for (const until = Date.now() + 10_000; ; await new Promise((r) => setTimeout(r, 50))) {
        const md = await client.metadata()
        if (md.nodes.some((n) => n.id === 4) === present) return
        if (Date.now() > until) throw new Error(`node 4 is ${present ? 'not yet' : 'still'} registered: ${md.nodes.map((n) => n.id).join(',')}`)
      }
    }
    await registered(true)

    // a partition moves onto it: it catches up and every node (itself too) sees it in the replicas
    const from = [...(await client.metadata(['grow'])).topics[0]!.partitions[0]!.replicas]
    const to = [4, ...from.slice(0, 2)]
    const moved = await runMoves(client, [{ topic: 'grow', partition: 0, from, to }], 30_000)
    expect(moved.failed).toBe(false)
    const on4 = new Client({ brokers: [c.broker(4)] })
    cleanups.add(() => on4.close())
    expect((await on4.metadata(['grow'])).topics[0]!.partitions[0]!.replicas).toEqual(to)
    // caught up: node 4 applied all its leader has committed (the messages as entries)
    const caughtUp = async (what: string): Promise<void> => {
      for (const until = Date.now() + 10_000; ; await new Promise((r) => setTimeout(r, 50))) {
        const leader = (await client.metadata(['grow'])).topics[0]!.partitions[0]!.leader
        const report = async (id: number) => (await client.requestNode(id, 'describeCluster', {}, 5_000)).groups.find((g) => g.topic === 'grow' && g.partition === 0)
        const [mine, theirs] = [await report(4), leader == null ? undefined : await report(leader)]
        if (mine !== undefined && theirs !== undefined && theirs.role === 'leader' && mine.applied >= theirs.commit) return
        if (Date.now() > until) throw new Error(`node 4 did not catch up ${what}: ${JSON.stringify(mine)} (leader: ${JSON.stringify(theirs)})`)
      }
    }
    await caughtUp('after the move')
    // a new topic's replicas are placed over four nodes now, the new one (with the fewest) among them
    await admin.createTopic({ name: 'wide', partitions: 2, replicationFactor: 3 })
    const wide = (await client.metadata(['wide'])).topics[0]!.partitions
    expect(wide.some((p) => p.replicas.includes(4))).toBe(true)

    // a started node restarts without 4 in its --peers: the metadata tells it, and it dials 4 again
    await c.stop(1)
    await c.start(1)
    const seen = async (from: number, id: number): Promise<boolean | undefined> => (await client.requestNode(from, 'describeCluster', {}, 5_000)).nodes.find((n) => n.id === id)?.up
    for (const until = Date.now() + 10_000; (await seen(1, 4)) !== true; await new Promise((r) => setTimeout(r, 50))) {
      if (Date.now() > until) throw new Error('node 1 does not reach node 4 after its restart')
    }
    // and node 4 restarts: it waits for the metadata again, then hosts its replicas as before
    await c.stop(4)
    await c.start(4)
    const back = await client.producer().send({ topic: 'grow', partition: 0, value: 'after' })
    expect(back.offset).toBe(20)
    await caughtUp('after its restart')

    // leaving: refused while it holds replicas, accepted once drained
    await expect(admin.removeNode(4)).rejects.toMatchObject({ code: 'INVALID_NODE', message: expect.stringContaining('drain it first') })
    const plan = drainPlan(await client.metadata(), 4)
    expect(plan.stuck).toEqual([])
    expect((await runMoves(client, plan.moves, 30_000)).failed).toBe(false)
    await admin.removeNode(4)
    await registered(false)
    for (const until = Date.now() + 10_000; (await seen(1, 4)) !== undefined; await new Promise((r) => setTimeout(r, 50))) {
      if (Date.now() > until) throw new Error('node 1 still lists node 4')
    }
    const page = await client.consumer().fetch({ topic: 'grow', partition: 0, offset: 0, maxBytes: 1 << 20 })
    expect(page.messages.map((m) => new TextDecoder().decode(m.value!))).toEqual([...Array.from({ length: 20 }, (_, i) => `g${i}`), 'after'])
  }, 120_000)
})
