import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { Failpoints, parseFailpoints } from '../../../src/storage/wal/failpoints.js'
import { NodeWalFs, Wal } from '../../../src/storage/wal/index.js'
import { rec } from './helpers.js'

const temps: string[] = []
afterEach(async () => {
  for (const d of temps.splice(0)) await rm(d, { recursive: true, force: true })
})

async function temp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'raftmq-failpoints-'))
  temps.push(d)
  return d
}

describe('wal failpoints - RAFTMQ_FAILPOINTS', () => {
  it('reads a spec: the point, its errno, how many calls pass first and which paths it applies to', () => {
    expect(parseFailpoints('wal.datasync:error=EIO,after=5,path=/w0/')).toEqual({ ok: true, value: [{ name: 'wal.datasync', error: 'EIO', hangMs: 0, after: 5, path: '/w0/' }] })
    expect(parseFailpoints(' wal.datasync : error=ENOSPC ; ')).toEqual({ ok: true, value: [{ name: 'wal.datasync', error: 'ENOSPC', hangMs: 0, after: 0, path: null }] })
    expect(parseFailpoints('wal.datasync:hang=250,after=2')).toEqual({ ok: true, value: [{ name: 'wal.datasync', error: null, hangMs: 250, after: 2, path: null }] })
    expect(parseFailpoints('')).toEqual({ ok: true, value: [] })
  })

  it('refuses a spec it cannot read, naming the variable and what is wrong', () => {
    const why = (spec: string): string => {
      const r = parseFailpoints(spec)
      return r.ok ? 'accepted' : r.error.message
    }
    expect(why('wal.fsync:error=EIO')).toMatch(/^RAFTMQ_FAILPOINTS="wal.fsync:error=EIO": unknown failpoint "wal.fsync" \(known: wal.datasync\)/)
    expect(why('wal.datasync')).toMatch(/error=<ERRNO> or hang=<ms> is required/)
    expect(why('wal.datasync:hang=soon')).toMatch(/cannot read option "hang=soon"/)
    expect(why('wal.datasync:error=eio')).toMatch(/cannot read option "error=eio"/)
    expect(why('wal.datasync:error=EIO,after=-1')).toMatch(/cannot read option "after=-1"/)
    expect(why('wal.datasync:error=EIO,when=3')).toMatch(/cannot read option "when=3"/)
    expect(why('wal.datasync:error=EIO;wal.datasync:error=EIO')).toMatch(/given twice/)
    expect(Failpoints.fromEnv({ RAFTMQ_FAILPOINTS: 'nope' }).ok).toBe(false)
  })

  it('arms nothing unless the variable names a point', () => {
    expect(Failpoints.fromEnv({})).toEqual({ ok: true, value: null })
    expect(Failpoints.fromEnv({ RAFTMQ_FAILPOINTS: ' ' })).toEqual({ ok: true, value: null })
    const armed = Failpoints.fromEnv({ RAFTMQ_FAILPOINTS: 'wal.datasync:error=EIO,after=1' })
    expect(armed.ok && armed.value?.describe()).toBe('wal.datasync: error=EIO,after=1')
  })

  it('counts only the calls on matching paths, lets `after` of them pass, and fails every later one', () => {
    const fp = new Failpoints([{ name: 'wal.datasync', error: 'EIO', hangMs: 0, after: 2, path: '/w0/' }])
    expect(fp.hit('wal.datasync', '/d/wal/1/w1/0000000001.wal')).toBeNull()
    expect(fp.hit('wal.datasync', '/d/wal/1/w0/0000000001.wal')).toBeNull()
    expect(fp.hit('wal.datasync', '/d/wal/1/main/0000000001.wal')).toBeNull()
    expect(fp.hit('wal.datasync', '/d/wal/1/w0/0000000001.wal')).toBeNull()
    expect(fp.hit('wal.datasync', '/d/wal/1/w0/0000000002.wal')).toEqual({ code: 'EIO', message: expect.stringMatching(/injected by failpoint wal.datasync \(its call 3 /) })
    expect(fp.hit('wal.datasync', '/d/wal/1/w0/0000000002.wal')?.code).toBe('EIO')
    expect(fp.hit('wal.datasync', '/d/wal/1/w1/0000000001.wal')).toBeNull()
  })

  it('hang= blocks the calling thread that long, then lets the call go on (or fail, with error=)', () => {
    const fp = new Failpoints([{ name: 'wal.datasync', error: null, hangMs: 150, after: 1, path: null }])
    expect(fp.hit('wal.datasync', '/w0/1.wal')).toBeNull() // `after`: let through
    const t = performance.now()
    expect(fp.hit('wal.datasync', '/w0/1.wal')).toBeNull()
    expect(performance.now() - t).toBeGreaterThanOrEqual(145)
  })

  it('NodeWalFs: a WAL whose second commit meets the point stops with WAL_IO naming it; without one, the same commits succeed', async () => {
    // the fdatasyncs opening a WAL makes (its first segment), counted by a point that never fires
    const probe = new Failpoints([{ name: 'wal.datasync', error: 'EIO', hangMs: 0, after: 1_000_000, path: '/w0/' }])
    const probed = Wal.open({ fs: new NodeWalFs({ failpoints: probe }), dir: join(await temp(), 'wal', 'w0'), segmentBytes: 64 << 10 }, () => {})
    if (!probed.ok) throw new Error(probed.error.message)
    probed.value.wal.close()
    await probed.value.wal.settled()
    const opening = probe.calls('wal.datasync')

    const dir = join(await temp(), 'wal', 'w0')
    const fs = new NodeWalFs({ failpoints: new Failpoints([{ name: 'wal.datasync', error: 'EIO', hangMs: 0, after: opening + 1, path: '/w0/' }]) })
    const opened = Wal.open({ fs, dir, segmentBytes: 64 << 10 }, () => {})
    if (!opened.ok) throw new Error(opened.error.message)
    const wal = opened.value.wal
    wal.add(rec(1, 1))
    expect(wal.commit().ok).toBe(true)
    wal.add(rec(1, 2))
    const failed = wal.commit()
    expect(failed.ok ? null : failed.error).toEqual({ code: 'WAL_IO', message: expect.stringMatching(/^fdatasync of .*\/w0\/0+1\.wal failed: EIO injected by failpoint wal.datasync/) })
    wal.close()
    await wal.settled()

    const plainDir = join(await temp(), 'wal', 'w0')
    const plain = Wal.open({ fs: new NodeWalFs({ failpoints: null }), dir: plainDir, segmentBytes: 64 << 10 }, () => {})
    if (!plain.ok) throw new Error(plain.error.message)
    for (let i = 1; i <= 3; i++) {
      plain.value.wal.add(rec(1, i))
      expect(plain.value.wal.commit().ok).toBe(true)
    }
    plain.value.wal.close()
    await plain.value.wal.settled()
  })
})
