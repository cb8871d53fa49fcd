/**
 * Node configuration (src/broker/config.ts): the log view's bound for tests and tuning.
 */
import { describe, expect, it } from 'vitest'
import { resolveConfig, settings } from '../../src/broker/config.js'

describe('config - view entries', () => {
  it('--view-entries-max / RAFTMQ_VIEW_ENTRIES_MAX: 0 (the default bounds) unless set; 1 and negatives are refused', () => {
    const s = settings.find((x) => x.key === 'viewEntriesMax')
    expect(s).toMatchObject({ flag: '--view-entries-max <n>', env: 'RAFTMQ_VIEW_ENTRIES_MAX', default: '0' })
    const get = (v?: string) => resolveConfig(v === undefined ? {} : { viewEntriesMax: v })
    const d = get()
    expect(d.ok && d.value.viewEntriesMax).toBe(0)
    const set = get('100')
    expect(set.ok && set.value.viewEntriesMax).toBe(100)
    for (const bad of ['1', '-3', 'many']) {
      const r = get(bad)
      expect(r.ok, bad).toBe(false)
      if (!r.ok) expect(r.error.message).toContain('viewEntriesMax')
    }
  })
})
