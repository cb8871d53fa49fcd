/**
 * src/base: the bottom layer. Assertions, the seeded PRNG, the limits table, Result and the
 * length-prefixed stream decoder both wire protocols frame with.
 * Imports nothing (no npm packages, no node:* modules), so every layer may use it.
 */
export { assert, unreachable, AssertionError } from './assert.js'
export { Prng } from './prng.js'
export { limits } from './limits.js'
export { sameMembers } from './members.js'
export { ok, fail } from './result.js'
export type { Result, Failure } from './result.js'
export { LENGTH_PREFIX_BYTES, LENGTH_PREFIX_MAX, LengthPrefixedDecoder } from './length-prefixed.js'
export type { LengthPrefixedSink } from './length-prefixed.js'
