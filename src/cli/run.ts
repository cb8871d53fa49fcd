/**
 * What the client subcommands of `raftmq` share: the --brokers option, parsers for
 * numeric flags, a client that lives as long as one action, and the exit-code policy.
 *
 * Exit codes: 0 done; 1 the operation failed (a broker error, an unreachable broker, an
 * unreadable file), reported as one line `raftmq: CODE: message` on stderr; 2 bad usage
 * (commander has already printed the problem and the usage line).
 *
 * Imports client, commander and node modules.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander'
import { Client, RaftmqError } from '../client/index.js'
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { PROTOCOL_VERSION_MAX } from '../protocol/api.js'

export const exitCodes = { ok: 0, failed: 1, usage: 2 } as const

export const brokersDefault = '127.0.0.1:7070'

/** `-b, --brokers host:port[,...]`, from RAFTMQ_BROKERS when not given. */
export function brokersOption(): Option {
  return new Option('-b, --brokers <host:port,...>', 'brokers to bootstrap from, comma-separated')
    .env('RAFTMQ_BROKERS')
    .default([brokersDefault], brokersDefault)
    .argParser(parseBrokers)
}

export function parseBrokers(value: string): string[] {
  const brokers = value
    .split(',')
    .map((b) => b.trim())
    .filter((b) => b !== '')
  if (brokers.length === 0) throw new InvalidArgumentError('expected host:port[,host:port...]')
  for (const b of brokers) {
    const m = /^(.+):(\d+)$/.exec(b)
    if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) throw new InvalidArgumentError(`${JSON.stringify(b)} is not host:port`)
  }
  return brokers
}

/** An argument parser for an integer in [min, max]; anything else is a usage error. */
export function integer(min: number, max: number = Number.MAX_SAFE_INTEGER): (value: string) => number {
  return (value: string) => {
    const n = /^-?\d+$/.test(value.trim()) ? Number(value) : NaN
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(max === Number.MAX_SAFE_INTEGER ? `expected an integer >= ${min}` : `expected an integer from ${min} to ${max}`)
    }
    return n
  }
}

/** Help text listing examples, for `addHelpText('after', ...)`. */
export function examples(...lines: string[]): string {
  return `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`
}

/** Runs `action` with a client of `brokers`, closing it however the action ends. */
export async function withClient<T>(brokers: readonly string[], action: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ brokers, clientId: 'raftmq-cli' })
  try {
    return await action(client)
  } finally {
    await client.close()
  }
}

/** The failure line of an error: `raftmq: CODE: message`, or `raftmq: message` when it has no code. */
export function failureLine(err: unknown): string {
  if (err instanceof RaftmqError) return `raftmq: ${err.code}: ${err.message}`
  if (err instanceof Error) return `raftmq: ${err.message}`
  return `raftmq: ${String(err)}`
}

/**
 * The exit code for an error that ended the command, reporting it first unless
 * commander already has: commander's own errors are bad usage (its help and version
 * exits are 0), anything else is a failed operation.
 */
export function exitCodeOf(err: unknown): number {
  if (err instanceof CommanderError) return err.exitCode === 0 ? exitCodes.ok : exitCodes.usage
  process.stderr.write(`${failureLine(err)}\n`)
  return exitCodes.failed
}

/** Every command of the tree under `root`, root included. */
export function commandTree(root: Command): Command[] {
  return [root, ...root.commands.flatMap((c) => commandTree(c))]
}

/** The full name of `cmd`, such as `raftmq topic create`. */
export function commandPath(cmd: Command): string {
  const names: string[] = []
  for (let c: Command | null = cmd; c; c = c.parent) names.unshift(c.name())
  return names.join(' ')
}

/**
 * Makes usage errors of every command in the tree throw (so main maps them to exit 2),
 * print as `raftmq: problem`, and end with the command's usage line.
 */
/**
 * `raftmq 0.1.0 (protocol 1, Node.js v20.20.2)`: the package's version from its
 * package.json, found above this module (src/cli when run from source, dist/src/cli
 * when built).
 */
export function versionLine(): string {
  let version = 'unknown'
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string }
      if (pkg.name === 'raftmq' && typeof pkg.version === 'string') {
        version = pkg.version
        break
      }
    } catch {
      // not here: look further up
    }
    if (dirname(dir) === dir) break
  }
  return `raftmq ${version} (protocol ${PROTOCOL_VERSION_MAX}, Node.js ${process.version})`
}

export function configureUsageErrors(root: Command): void {
  for (const cmd of commandTree(root)) {
    const path = commandPath(cmd)
    cmd
      .exitOverride()
      .configureOutput({ outputError: (text, write) => write(text.replace(/^error: /, 'raftmq: ')) })
      .showHelpAfterError(`usage: ${path} ${cmd.usage()}\n(run "${path} --help" for details)`)
  }
}
