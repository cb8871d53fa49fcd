/**
 * bench/lib/broker-main.ts — the broker process the benchmarks start: what `raftmq start`
 * does (resolveConfig + runNodeProcess, a clean stop on SIGINT/SIGTERM), without the CLI's
 * argument parsing, so the benchmarks do not depend on the command's other subcommands.
 *
 *   node --import tsx bench/lib/broker-main.ts '{"dataDir":"/tmp/x","listen":"127.0.0.1:0"}'
 *
 * The argument is a RawConfig as JSON (keys as in src/broker/config.ts). The node's own
 * pino log goes to stdout; its "raftmq node started" line carries the listen address.
 *
 * Imports the broker's public entry points only.
 */
import { resolveConfig } from '../../src/broker/config.js'
import type { RawConfig } from '../../src/broker/config.js'
import { runNodeProcess } from '../../src/broker/node.js'

const raw = JSON.parse(process.argv[2] ?? '{}') as RawConfig
const config = resolveConfig(raw)
if (!config.ok) {
  process.stderr.write(`broker-main: ${config.error.message}\n`)
  process.exit(2)
}
await runNodeProcess(config.value, 'broker-main')
