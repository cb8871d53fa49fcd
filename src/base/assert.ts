/**
 * Assertions for programmer errors. A failed assertion is a bug: it throws an
 * AssertionError that nobody is meant to catch, so a broken invariant stops loudly
 * instead of limping on. Operating errors (bad input, a peer that went away) are
 * values (see result.ts), never assertions.
 *
 * Imports nothing.
 */

export class AssertionError extends Error {
  override name = 'AssertionError'
}

export function assert(condition: unknown, message: string | (() => string)): asserts condition {
  if (!condition) {
    throw new AssertionError(typeof message === 'function' ? message() : message)
  }
}

/** Marks a branch that a correct program never reaches. */
export function unreachable(what: string): never {
  throw new AssertionError(`unreachable: ${what}`)
}
