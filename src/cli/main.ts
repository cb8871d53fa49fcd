#!/usr/bin/env node
/**
 * The `raftmq` command: one subcommand per module of src/cli.
 *
 * Imports cli modules and commander.
 */
import { Command } from 'commander'
import { startCommand } from './start.js'

const program = new Command('raftmq')
  .description('raftmq: a partitioned, replicated message log; every partition is a Raft group')
  .showHelpAfterError()
program.addCommand(startCommand())
await program.parseAsync(process.argv)
