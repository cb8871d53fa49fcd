/**
 * `raftmq data quarantine list|purge`: the data directory's quarantine, offline. A node
 * moves a group directory no topic owns to `<data-dir>/quarantine/` instead of deleting
 * it; these commands show what is there and delete it on an operator's word.
 *
 * `list` reads without the lock, so it works beside a running node. `purge` takes the
 * data directory's lock itself, so it refuses while a node (or another purge) holds it,
 * and exits 1 with `raftmq: DATA_DIR_IN_USE: data directory ./data is in use by process
 * 1234`. Tables are plain aligned columns with an upper-case header, like `topic list`.
 *
 * Imports storage (the data directory), ./run and packages.
 */
import { Command, Option } from 'commander'
import { DataDir } from '../storage/index.js'
import { examples } from './run.js'
import { plainTable, render } from './table.js'

interface DataDirOpts {
  readonly dataDir: string
}

interface PurgeOpts extends DataDirOpts {
  readonly all?: boolean
}

type Quarantined = Extract<Awaited<ReturnType<typeof DataDir.listQuarantineAt>>, { ok: true }>['value'][number]

export function dataCommand(): Command {
  const data = new Command('data')
    .description("a data directory's quarantine: group data a node set aside instead of deleting")
    .addHelpText('after', examples('raftmq data quarantine list', 'raftmq data quarantine purge --all --data-dir /var/lib/raftmq'))

  const quarantine = data
    .command('quarantine')
    .description('list or delete group directories a node set aside because no topic owned them')
    .addHelpText(
      'after',
      `\nA node never deletes a group's data because its metadata does not mention it:\nit moves the directory to <data-dir>/quarantine/<group>.<time> and logs a warning.\n${examples('raftmq data quarantine list', 'raftmq data quarantine purge 7.2026-01-02T030405.678Z')}`,
    )

  quarantine
    .command('list')
    .description('list what is in quarantine, with group, time and size (safe while a node runs)')
    .addOption(dataDirOption())
    .addHelpText('after', examples('raftmq data quarantine list', 'raftmq data quarantine list --data-dir /var/lib/raftmq'))
    .action(async (opts: DataDirOpts) => {
      const listed = await DataDir.listQuarantineAt(opts.dataDir)
      if (!listed.ok) throw new Error(`${listed.error.code}: ${listed.error.message}`)
      if (listed.value.length === 0) {
        process.stdout.write(`nothing in quarantine in ${opts.dataDir}\n`)
        return
      }
      process.stdout.write(formatQuarantine(listed.value))
      process.stdout.write(`\nremove with: raftmq data quarantine purge NAME... --data-dir ${opts.dataDir} (or --all), while no node runs on it\n`)
    })

  quarantine
    .command('purge')
    .description('delete quarantined group directories for good (refused while a node holds the data directory)')
    .argument('[names...]', 'entries to delete, as `list` names them')
    .option('--all', 'delete everything in quarantine')
    .addOption(dataDirOption())
    .addHelpText('after', examples('raftmq data quarantine purge 7.2026-01-02T030405.678Z', 'raftmq data quarantine purge --all --data-dir /var/lib/raftmq'))
    .action(async (names: string[], opts: PurgeOpts, cmd: Command) => {
      if (opts.all === true && names.length > 0) cmd.error('raftmq: give either --all or names, not both', { exitCode: 2 })
      if (opts.all !== true && names.length === 0) cmd.error('raftmq: name the entries to purge, or give --all', { exitCode: 2 })
      const opened = await DataDir.openExisting(opts.dataDir)
      if (!opened.ok) throw new Error(`${opened.error.code}: ${opened.error.message}`)
      const dir = opened.value
      try {
        const purged = await dir.purgeQuarantine(opts.all === true ? 'all' : names)
        if (!purged.ok) throw new Error(`${purged.error.code}: ${purged.error.message}`)
        if (purged.value.length === 0) process.stdout.write(`nothing in quarantine in ${opts.dataDir}\n`)
        for (const q of purged.value) process.stdout.write(`purged ${q.name} (${formatBytes(q.bytes)})\n`)
      } finally {
        await dir.close()
      }
    })

  return data
}

function dataDirOption(): Option {
  return new Option('-d, --data-dir <dir>', 'the data directory').env('RAFTMQ_DATA_DIR').default('./data')
}

export function formatQuarantine(entries: readonly Quarantined[]): string {
  const table = plainTable(['NAME', 'GROUP', 'QUARANTINED', 'SIZE'])
  for (const q of entries) table.push([q.name, q.group ?? '-', q.quarantinedAt.toISOString(), formatBytes(q.bytes)])
  return `${render(table)}\n`
}

function formatBytes(bytes: number): string {
  const units: [number, string][] = [
    [1 << 30, 'GiB'],
    [1 << 20, 'MiB'],
    [1 << 10, 'KiB'],
  ]
  for (const [size, unit] of units) if (bytes >= size) return `${(bytes / size).toFixed(1)} ${unit}`
  return `${bytes} B`
}

