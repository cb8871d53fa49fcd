#!/usr/bin/env node
/**
 * The `raftmq` command: one subcommand per module of src/cli.
 *
 * Exit codes (./run.ts): 0 done, 1 a failed operation (one line `raftmq: CODE: message`
 * on stderr), 2 bad usage (the problem and the usage line on stderr).
 *
 * Imports cli modules and commander.
 */
import { Command } from 'commander'
import { benchCommand } from './bench.js'
import { clusterCommand } from './cluster.js'
import { consumeCommand } from './consume.js'
import { dataCommand } from './data.js'
import { produceCommand } from './produce.js'
import { commandTree, configureUsageErrors, exitCodeOf, versionLine } from './run.js'
import { startCommand } from './start.js'
import { topicCommand } from './topic.js'
import { nodeCommand, partitionCommand } from './move-commands.js'

const program = new Command('raftmq').description('raftmq: a partitioned, replicated message log; every partition is a Raft group')
program.addCommand(startCommand())
program.addCommand(clusterCommand())
program.addCommand(topicCommand())
program.addCommand(partitionCommand())
program.addCommand(nodeCommand())
program.addCommand(produceCommand())
program.addCommand(consumeCommand())
program.addCommand(benchCommand())
program.addCommand(dataCommand())
configureUsageErrors(program)
// `-V` answers on every command, as `raftmq topic create -V` users expect (kcat, rpk)
const version = versionLine()
for (const cmd of commandTree(program)) cmd.version(version, '-V, --version', 'print the version and exit')
try {
  await program.parseAsync(process.argv)
} catch (err) {
  process.exitCode = exitCodeOf(err)
}
