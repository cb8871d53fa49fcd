/**
 * The command line's tables: borderless, columns separated by two spaces, no padding at
 * the line ends, so they read well and paste cleanly (kcat/rpk style). One place, for every
 * command that prints one.
 *
 * Imports cli-table3.
 */
import Table from 'cli-table3'

export function plainTable(head: string[]): Table.Table {
  const none = { top: '', 'top-mid': '', 'top-left': '', 'top-right': '', bottom: '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '' }
  return new Table({
    head,
    chars: { ...none, left: '', 'left-mid': '', mid: '', 'mid-mid': '', right: '', 'right-mid': '', middle: '  ' },
    style: { head: [], border: [], 'padding-left': 0, 'padding-right': 0, compact: true },
  })
}

export function render(table: Table.Table): string {
  return table
    .toString()
    .split('\n')
    .map((line) => line.trimEnd())
    .join('\n')
}
