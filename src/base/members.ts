/**
 * Comparing lists of node ids as sets: a partition's replicas, a group's voters and a
 * move's target name the same nodes whatever their order (the order says who is the
 * preferred leader, not who is a member). The lists hold no id twice.
 *
 * Imports nothing.
 */

/** Do `a` and `b` name the same nodes, in any order? */
export function sameMembers(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((n) => b.includes(n))
}
