import { describe, expect, it } from 'vitest'
import { stopFailure } from '../../src/broker/node.js'

describe('stopFailure - the one stderr line of a stop after a storage failure', () => {
  it('names the first three failures and counts the rest, however many groups failed', () => {
    const storage = Array.from({ length: 10_000 }, (_, g) => ({ where: `worker ${g % 2}`, code: 'STORAGE_FAILED' as const, message: `group ${g}: its state could not be written` }))
    const f = stopFailure({ storage, closeErrors: ['group 7: timed out', 'group 8: timed out', 'group 9: timed out', 'group 10: timed out'] })
    expect(f?.code).toBe('STORAGE_FAILED')
    expect(f!.line).toContain('worker 0: group 0: its state could not be written; worker 1: group 1: its state could not be written; worker 0: group 2: its state could not be written; and 9997 more (see the log)')
    expect(f!.line).toContain('not closed: group 7: timed out; group 8: timed out; group 9: timed out; and 1 more (see the log)')
    expect(f!.line.length).toBeLessThan(600)
  })

  it('nothing wrong: no line', () => {
    expect(stopFailure({ storage: [], closeErrors: [] })).toBeNull()
  })
})
