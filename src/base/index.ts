/**
 * src/base: the bottom layer. Assertions, the seeded PRNG, the limits table and Result.
 * Imports nothing (no npm packages, no node:* modules), so every layer may use it.
 */
export { assert, unreachable, AssertionError } from './assert.js'
export { Prng } from './prng.js'
export { limits } from './limits.js'
export { ok, fail } from './result.js'
export type { Result, Failure } from './result.js'
