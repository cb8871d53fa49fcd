/**
 * Result: how expected failures cross a boundary. An operation that can fail for
 * reasons outside the program's control returns `{ ok: false, error }` with a stable
 * code instead of throwing; exceptions are kept for bugs (see assert.ts).
 *
 * Imports nothing.
 */

export interface Failure<C extends string = string> {
  readonly code: C
  readonly message: string
}

export type Result<T, C extends string = string> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: Failure<C> }

export function ok<T>(value: T): { readonly ok: true; readonly value: T } {
  return { ok: true, value }
}

export function fail<C extends string>(code: C, message: string): { readonly ok: false; readonly error: Failure<C> } {
  return { ok: false, error: { code, message } }
}
