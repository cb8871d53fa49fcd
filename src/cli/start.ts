/**
 * `raftmq start`: reads the configuration (flags > RAFTMQ_* environment > JSON config
 * file > defaults), starts a node and keeps it running until SIGINT or SIGTERM, then
 * shuts it down cleanly (stop accepting, finish requests in flight, close databases).
 *
 * Exit codes: 0 stopped cleanly; 1 it could not start (one line on stderr); 2 bad usage;
 * 3 it stopped after a storage failure (a full disk, an I/O error) or without closing
 * everything: one line `raftmq: STORAGE_FULL|STORAGE_FAILED: stopped on SIGTERM ...` on
 * stderr says what and where (src/broker/node.ts runNodeProcess).
 *
 * Imports broker only.
 */
import { readFileSync } from 'node:fs'
import { Command, Option } from 'commander'
import { resolveConfig, settings } from '../broker/config.js'
import type { RawConfig } from '../broker/config.js'

export function startCommand(): Command {
  const cmd = new Command('start')
    .description('start a node (single node by default: data in ./data, clients on 127.0.0.1:7070)')
    .addOption(new Option('-c, --config <file>', 'JSON file with settings (keys as below, camelCase)').env('RAFTMQ_CONFIG'))
    .addHelpText(
      'after',
      '\nExit codes: 0 stopped cleanly (SIGINT, SIGTERM); 1 could not start; 2 bad usage;\n' +
        '3 stopped after a storage failure (STORAGE_FULL, STORAGE_FAILED), named on stderr,\n' +
        '  or by a second signal, or when closing had not finished 30 s after --shutdown-timeout-ms.\n',
    )
  for (const s of settings) cmd.addOption(new Option(s.flag, s.help).env(s.env).default(s.default))
  cmd.action(async (opts: Record<string, unknown>) => {
    const raw: RawConfig = {}
    let fromFile: Record<string, unknown> = {}
    if (typeof opts.config === 'string') {
      try {
        fromFile = JSON.parse(readFileSync(opts.config, 'utf8')) as Record<string, unknown>
      } catch (err) {
        cmd.error(`raftmq: cannot read config file ${opts.config}: ${err instanceof Error ? err.message : String(err)}`, { exitCode: 2 })
      }
      if (typeof fromFile !== 'object' || fromFile === null || Array.isArray(fromFile)) {
        cmd.error(`raftmq: config file ${opts.config} must hold a JSON object`, { exitCode: 2 })
      }
    }
    for (const key of Object.keys(fromFile)) {
      if (!settings.some((s) => s.key === key)) cmd.error(`raftmq: unknown setting "${key}" in ${opts.config}`, { exitCode: 2 })
    }
    for (const s of settings) {
      // a flag or an environment variable beats the file; the file beats the default
      const source = cmd.getOptionValueSource(s.key)
      raw[s.key] = source === 'default' && s.key in fromFile ? fromFile[s.key] : opts[s.key]
    }
    const config = resolveConfig(raw)
    if (!config.ok) cmd.error(`raftmq: ${config.error.message}`, { exitCode: 2 })
    if (!config.ok) return
    // loaded here, not at the top: the broker's modules take a third of a second to load,
    // which every other subcommand would pay for nothing
    const { runNodeProcess } = await import('../broker/node.js')
    await runNodeProcess(config.value, 'raftmq')
  })
  return cmd
}
