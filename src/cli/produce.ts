/**
 * `raftmq produce <topic>`: like `kcat -P`, one message per line of stdin or a file (or
 * per -D delimiter, or the whole input as one message), optionally split into key and
 * value at a delimiter, with -H headers, sent with `Producer.sendBatch`.
 *
 * Batching: lines gather into a batch that leaves when it holds --batch-size messages or
 * `batchBytesMax` bytes, or, when the previous request has been answered, once its first
 * line has waited --linger-ms (so typed lines go out at once and a file goes out in full
 * batches). One request is in flight at a time, so messages keep their input order; at
 * most two full batches wait behind it before reading pauses.
 *
 * Lines are bytes split at \n (a \r before it is dropped), so values need not be text; a
 * line longer than the message limit fails at once without being held in memory.
 *
 * Failures: every failed message is counted by its code and the first `errorLinesMax` are
 * reported with their line number; the exit code is 1 if any failed. A batch failing
 * whole for a reason that is not about its messages (unknown topic, an unreachable broker)
 * stops the run: the rest of the input would fail the same way.
 *
 * Ctrl-C stops reading, sends what was read (as at the end of the input), prints the
 * same summary as any other stop and exits 130; a second Ctrl-C exits at once.
 *
 * Imports base, client, protocol (types), ./run, ./progress, ./format and packages.
 */
import { fstatSync } from 'node:fs'
import { open } from 'node:fs/promises'
import type { Readable } from 'node:stream'
import { Command, InvalidArgumentError, Option } from 'commander'
import { limits } from '../base/index.js'
import { RaftmqError } from '../client/index.js'
import type { Client, Message, Producer } from '../client/index.js'
import type { Compression } from '../protocol/compression.js'
import { escapes } from './format.js'
import { Progress } from './progress.js'
import { brokersOption, examples, integer, withClient } from './run.js'

interface ProduceOpts {
  readonly brokers: string[]
  readonly partition?: number
  readonly key?: string
  readonly keyDelimiter?: string
  readonly delimiter?: string
  readonly wholeFile?: boolean
  readonly header: readonly (readonly [string, string])[]
  readonly nullEmpty?: boolean
  readonly batchSize: number
  readonly lingerMs: number
  readonly compression: Compression
  readonly idempotent?: boolean
  readonly file?: string
}

/** Bytes of keys and values in one batch: the producer's default batchMaxBytes. */
const batchBytesMax = 1 << 20
/** The longest line kept: a longer one could never be a message, so it fails at once. */
const lineBytesMax = limits.produce.messageBytesMax
/** Full batches waiting behind the one in flight before reading pauses. */
const batchesWaitingMax = 2
/** Failed messages reported one by one; the rest are only counted. */
const errorLinesMax = 10
/** Codes that fail a message for what it is; any other code failing a whole batch stops the run. */
const messageErrors: ReadonlySet<string> = new Set(['MESSAGE_TOO_LARGE', 'BATCH_TOO_LARGE', 'INVALID_RECORD', 'CORRUPT_MESSAGE', 'BATCH_REJECTED'])

export function produceCommand(): Command {
  return new Command('produce')
    .description('send one message per line of stdin (or --file), in batches')
    .argument('<topic>', 'topic to produce to')
    .addOption(new Option('-p, --partition <n>', 'partition (default: by key hash, or spread over the partitions when there is no key)').argParser(integer(0)))
    .addOption(new Option('-k, --key <key>', 'the same key for every message'))
    .addOption(new Option('-K, --key-delimiter <delim>', 'split each message at the first <delim> into key and value (escapes: \\t \\n \\r \\0 \\\\ \\xHH); one without it has no key').conflicts('key'))
    .addOption(new Option('-D, --delimiter <delim>', 'messages end at <delim> instead of a newline (escapes as for -K; a \\r before it is kept)'))
    .addOption(new Option('--whole-file', 'the whole input is one message').conflicts('delimiter'))
    .addOption(new Option('-H, --header <name=value>', 'a header on every message (repeatable)').argParser(collectHeader).default([], 'none'))
    .addOption(new Option('-Z, --null-empty', 'an empty value is sent as null (a tombstone), not as an empty message'))
    .addOption(new Option('--batch-size <n>', 'messages per request (one Raft proposal per partition)').argParser(integer(1, 100_000)).default(1000))
    .addOption(new Option('--linger-ms <ms>', 'how long a batch that is not full waits for more lines').argParser(integer(0, 60_000)).default(5))
    .addOption(new Option('-z, --compression <codec>', 'batch compression').choices(['none', 'gzip', 'lz4', 'zstd']).default('none'))
    .addOption(new Option('--idempotent', 'store each message exactly once even when a request is retried'))
    .addOption(new Option('-l, --file <file>', 'read messages from this file instead of stdin (kcat\'s -l)'))
    .addOption(brokersOption())
    .addHelpText(
      'after',
      `\nEvery line is one message (an empty line is an empty message); a summary is printed at the end.\n${examples(
        'raftmq produce orders < orders.txt',
        "printf 'k1:hello\\nk2:world\\n' | raftmq produce orders -K :",
        "raftmq produce orders -H source=import -H v=2 < orders.txt",
        "printf 'a;b;c' | raftmq produce orders -D ';'",
        'raftmq produce configs --whole-file -k app.json --file app.json',
        'raftmq produce logs --file app.log --batch-size 5000 --compression zstd',
      )}`,
    )
    .action(async (topic: string, opts: ProduceOpts) => {
      const input = await openInput(opts.file)
      const interrupt = new AbortController()
      const onSigint = (): void => {
        if (interrupt.signal.aborted) {
          process.stderr.write('raftmq: interrupted again: exiting now (what was in flight may or may not be stored)\n')
          process.exit(130)
        }
        process.stderr.write('raftmq: interrupted: reading no more input, sending what was read (Ctrl-C again to quit at once)\n')
        interrupt.abort()
        input.stream.destroy()
      }
      process.on('SIGINT', onSigint)
      try {
        await withClient(opts.brokers, (client) => produce(client, topic, input, opts, interrupt.signal))
        if (interrupt.signal.aborted) process.exitCode = 130
      } finally {
        process.off('SIGINT', onSigint)
        input.stream.destroy()
      }
    })
}

/** `-H name=value`, collected in order; a repeated name is sent once per -H (the last one wins when read back). */
function collectHeader(value: string, previous: readonly (readonly [string, string])[]): (readonly [string, string])[] {
  const at = value.indexOf('=')
  if (at <= 0) throw new InvalidArgumentError(`expected name=value, got ${JSON.stringify(value)}`)
  return [...previous, [value.slice(0, at), value.slice(at + 1)] as const]
}

/** A delimiter as typed: \t \n \r \0 \\ and \xHH are the bytes they name; the rest is taken as UTF-8. */
export function parseDelimiter(text: string): Buffer {
  const bytes: number[] = []
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!
    if (c !== '\\' || i + 1 >= text.length) {
      bytes.push(...Buffer.from(c))
      continue
    }
    const n = text[++i]!
    if (n in escapes) bytes.push(escapes[n]!.charCodeAt(0))
    else if (n === 'x' && /^[0-9a-fA-F]{2}$/.test(text.slice(i + 1, i + 3))) {
      bytes.push(parseInt(text.slice(i + 1, i + 3), 16))
      i += 2
    } else bytes.push(92, ...Buffer.from(n))
  }
  if (bytes.length === 0) throw new InvalidArgumentError('a delimiter must not be empty')
  return Buffer.from(bytes)
}

interface Input {
  readonly stream: Readable
  /** Known when the input is a regular file. */
  readonly sizeBytes: number | null
  readonly interactive: boolean
}

async function openInput(file: string | undefined): Promise<Input> {
  if (file === undefined) {
    let sizeBytes: number | null = null
    try {
      const stat = fstatSync(0)
      if (stat.isFile()) sizeBytes = stat.size
    } catch {
      // no usable stdin descriptor: its size stays unknown
    }
    return { stream: process.stdin, sizeBytes, interactive: process.stdin.isTTY === true }
  }
  try {
    const fh = await open(file)
    const stat = await fh.stat()
    return { stream: fh.createReadStream(), sizeBytes: stat.isFile() ? stat.size : null, interactive: false }
  } catch (err) {
    throw new Error(`cannot read ${file}: ${err instanceof Error ? err.message : String(err)}`, { cause: err })
  }
}

interface Batch {
  readonly messages: Message[]
  /** Input line number and key + value bytes of each message. */
  readonly lines: number[]
  readonly sizes: number[]
  bytes: number
}

interface Tally {
  lines: number
  bytesRead: number
  sent: number
  sentBytes: number
  failed: number
  readonly failedByCode: Map<string, number>
  /** What ended the run early, if anything did. */
  stopped: Error | null
}

async function produce(client: Client, topic: string, input: Input, opts: ProduceOpts, interrupted: AbortSignal): Promise<void> {
  // fail fast, before waiting for input, on a topic or partition that does not exist
  const partitions = await client.partitionCount(topic)
  if (opts.partition !== undefined && opts.partition >= partitions) {
    throw new RaftmqError('UNKNOWN_PARTITION', `topic ${topic} has no partition ${opts.partition} (it has ${partitions})`)
  }
  const producer = client.producer({ idempotent: opts.idempotent === true, compression: opts.compression })
  if (input.interactive) process.stderr.write(`reading messages for ${topic} from stdin, one per line; end with Ctrl-D\n`)
  const progress = input.interactive
    ? null
    : input.sizeBytes !== null
      ? new Progress({ total: input.sizeBytes, unit: 'bytes', delayMs: 500, formatValue: formatBytes })
      : new Progress({ total: null, unit: 'messages', delayMs: 500 })
  const startMs = performance.now()
  const tally = await sendLines(producer, topic, input.stream, opts, interrupted, (t) => progress?.update(input.sizeBytes !== null ? t.bytesRead : t.sent, `${t.sent.toLocaleString('en-US')} sent`))
  progress?.stop()
  const seconds = (performance.now() - startMs) / 1000
  const rate = seconds > 0 ? Math.round(tally.sent / seconds) : tally.sent
  process.stdout.write(
    `produced ${count(tally.sent, 'message')} (${formatBytes(tally.sentBytes)}) to ${topic} in ${seconds.toFixed(2)} s, ${rate.toLocaleString('en-US')} msgs/s\n`,
  )
  if (interrupted.aborted && !tally.stopped) process.stderr.write(`raftmq: interrupted after line ${tally.lines}: ${count(tally.lines - tally.sent - tally.failed, 'message')} not produced\n`)
  if (tally.stopped) {
    const unsent = tally.lines - tally.sent - tally.failed
    process.stderr.write(`raftmq: stopped after line ${tally.lines}: ${count(tally.failed + unsent, 'message')} not produced\n`)
    throw tally.stopped
  }
  if (tally.failed > 0) {
    const codes = [...tally.failedByCode].map(([code, n]) => `${code}: ${n}`).join(', ')
    throw new Error(`${tally.failed} of ${count(tally.lines, 'message')} failed (${codes})`)
  }
}

/** Reads `stream` to its end (or until a failure stops the run) and sends its lines. */
async function sendLines(producer: Producer, topic: string, stream: Readable, opts: ProduceOpts, interrupted: AbortSignal, onProgress: (t: Tally) => void): Promise<Tally> {
  const tally: Tally = { lines: 0, bytesRead: 0, sent: 0, sentBytes: 0, failed: 0, failedByCode: new Map(), stopped: null }
  const delimiter = opts.keyDelimiter === undefined ? null : parseDelimiter(opts.keyDelimiter)
  const fixedKey = opts.key ?? null
  const headers = opts.header.length === 0 ? undefined : Object.fromEntries(opts.header)
  const messages = opts.wholeFile === true ? wholeInput(stream, lineBytesMax) : splitMessages(stream, opts.delimiter === undefined ? null : parseDelimiter(opts.delimiter), lineBytesMax)
  const waiting: Batch[] = []
  let current = emptyBatch()
  let lingerTimer: NodeJS.Timeout | null = null
  let lingered = false
  let sending = false
  let ended = false
  let roomFreed: (() => void) | null = null
  let finished: () => void = () => {}
  const done = new Promise<void>((resolve) => (finished = resolve))

  const takeCurrent = (): Batch => {
    const b = current
    current = emptyBatch()
    if (lingerTimer) clearTimeout(lingerTimer)
    lingerTimer = null
    lingered = false
    return b
  }
  const wakeReader = (): void => {
    roomFreed?.()
    roomFreed = null
  }
  /** Sends the next batch that is due, if none is in flight; finishes when all is sent. */
  const pump = (): void => {
    if (sending) return
    if (tally.stopped) {
      waiting.length = 0
      takeCurrent()
      wakeReader()
      if (ended) finished()
      return
    }
    const next = waiting.shift() ?? (current.messages.length > 0 && (lingered || ended) ? takeCurrent() : undefined)
    if (!next) {
      if (ended) finished()
      return
    }
    wakeReader()
    sending = true
    void sendBatch(producer, next, tally).then(() => {
      sending = false
      onProgress(tally)
      pump()
    })
  }

  const add = (line: Buffer | { readonly tooLongBytes: number }): void => {
    tally.lines++
    if (!Buffer.isBuffer(line)) {
      tally.bytesRead += line.tooLongBytes + 1
      countFailure(tally, tally.lines, { code: 'MESSAGE_TOO_LARGE', message: `a line of ${line.tooLongBytes} bytes exceeds the message limit of ${lineBytesMax} bytes` })
      return
    }
    tally.bytesRead += line.byteLength + 1
    let key: Uint8Array | string | null = fixedKey
    let value = line
    if (delimiter) {
      const at = line.indexOf(delimiter)
      if (at >= 0) {
        key = line.subarray(0, at)
        value = line.subarray(at + delimiter.length)
      }
    }
    const size = value.byteLength + (key === null ? 0 : typeof key === 'string' ? Buffer.byteLength(key) : key.byteLength)
    current.messages.push({
      topic,
      ...(opts.partition === undefined ? {} : { partition: opts.partition }),
      key,
      value: value.byteLength === 0 && opts.nullEmpty === true ? null : value,
      ...(headers === undefined ? {} : { headers }),
    })
    current.lines.push(tally.lines)
    current.sizes.push(size)
    current.bytes += size
    if (current.messages.length >= opts.batchSize || current.bytes >= batchBytesMax) waiting.push(takeCurrent())
    else if (current.messages.length === 1) {
      lingerTimer = setTimeout(() => {
        lingered = true
        pump()
      }, opts.lingerMs)
    }
  }

  try {
    for await (const lines of messages) {
      for (const line of lines) {
        if (tally.stopped) break
        add(line)
      }
      pump()
      while (waiting.length >= batchesWaitingMax && !tally.stopped) await new Promise<void>((resolve) => (roomFreed = resolve))
      if (tally.stopped) break // leaving the loop ends the input stream
    }
  } catch (err) {
    // an interrupt destroys the input under the read: that is its end, not a failure
    if (!interrupted.aborted) tally.stopped ??= new Error(`cannot read the input: ${err instanceof Error ? err.message : String(err)}`, { cause: err })
  }
  ended = true
  pump()
  await done
  return tally
}

type Piece = Buffer | { readonly tooLongBytes: number }

/**
 * Splits a byte stream into messages at `delimiter`, or at \n dropping a \r before it
 * (null), one array per chunk read. The newline and any one-byte delimiter take the fast
 * path (splitLines); a longer one carries the unfinished message over to the next chunk.
 */
export function splitMessages(stream: AsyncIterable<Buffer | string>, delimiter: Buffer | null, lineBytesMax: number): AsyncGenerator<Piece[]> {
  if (delimiter === null) return splitLines(stream, lineBytesMax)
  if (delimiter.length === 1) return splitLines(stream, lineBytesMax, delimiter[0]!, false)
  return splitAt(stream, delimiter, lineBytesMax)
}

async function* splitAt(stream: AsyncIterable<Buffer | string>, delimiter: Buffer, lineBytesMax: number): AsyncGenerator<Piece[]> {
  let carry = Buffer.alloc(0)
  let tooLongBytes = 0
  for await (const read of stream) {
    const chunk = typeof read === 'string' ? Buffer.from(read) : read
    const pieces: Piece[] = []
    let data = carry.length > 0 ? Buffer.concat([carry, chunk]) : chunk
    for (;;) {
      const at = data.indexOf(delimiter)
      if (at < 0) break
      pieces.push(tooLongBytes > 0 ? { tooLongBytes: tooLongBytes + at } : at > lineBytesMax ? { tooLongBytes: at } : Buffer.from(data.subarray(0, at)))
      tooLongBytes = 0
      data = data.subarray(at + delimiter.length)
    }
    // past the limit: keep only what could still hold the start of a delimiter
    if (data.length > lineBytesMax + delimiter.length) {
      tooLongBytes += data.length - (delimiter.length - 1)
      data = data.subarray(data.length - (delimiter.length - 1))
    }
    carry = Buffer.from(data)
    if (pieces.length > 0) yield pieces
  }
  if (tooLongBytes > 0) yield [{ tooLongBytes: tooLongBytes + carry.length }]
  else if (carry.length > 0) yield [carry]
}

/** The whole input as one message (or its size, when it is past the limit). */
async function* wholeInput(stream: AsyncIterable<Buffer | string>, lineBytesMax: number): AsyncGenerator<Piece[]> {
  const parts: Buffer[] = []
  let bytes = 0
  for await (const read of stream) {
    const chunk = typeof read === 'string' ? Buffer.from(read) : read
    bytes += chunk.length
    if (bytes <= lineBytesMax) parts.push(chunk)
  }
  yield [bytes > lineBytesMax ? { tooLongBytes: bytes } : Buffer.concat(parts, bytes)]
}

/**
 * Splits a byte stream into lines at \n (dropping a \r before it), or at another one-byte
 * delimiter (dropping nothing), one array per chunk read. A line longer than
 * `lineBytesMax` is not kept: only its length is reported, so one huge line cannot
 * exhaust memory. Bytes stay bytes: values need not be UTF-8.
 */
export async function* splitLines(stream: AsyncIterable<Buffer | string>, lineBytesMax: number, delimiter = 10, dropCR = true): AsyncGenerator<Piece[]> {
  let parts: Buffer[] = []
  let partBytes = 0
  let tooLongBytes = 0
  const lineOf = (): Buffer | { readonly tooLongBytes: number } => {
    if (tooLongBytes > 0) return { tooLongBytes }
    const line = parts.length === 1 ? parts[0]! : Buffer.concat(parts, partBytes)
    return dropCR && line.byteLength > 0 && line[line.byteLength - 1] === 13 ? line.subarray(0, line.byteLength - 1) : line
  }
  for await (const read of stream) {
    const chunk = typeof read === 'string' ? Buffer.from(read) : read
    const lines: (Buffer | { readonly tooLongBytes: number })[] = []
    for (let start = 0; ; ) {
      const nl = chunk.indexOf(delimiter, start)
      const piece = chunk.subarray(start, nl < 0 ? chunk.byteLength : nl)
      if (tooLongBytes > 0) tooLongBytes += piece.byteLength
      else if (partBytes + piece.byteLength > lineBytesMax + 1 /* room for a \r */) {
        tooLongBytes = partBytes + piece.byteLength
        parts = []
        partBytes = 0
      } else if (piece.byteLength > 0) {
        parts.push(piece)
        partBytes += piece.byteLength
      }
      if (nl < 0) break
      lines.push(lineOf())
      parts = []
      partBytes = 0
      tooLongBytes = 0
      start = nl + 1
    }
    if (lines.length > 0) yield lines
  }
  if (partBytes > 0 || tooLongBytes > 0) yield [lineOf()]
}

function emptyBatch(): Batch {
  return { messages: [], lines: [], sizes: [], bytes: 0 }
}

/** Sends one batch and counts its outcome into `tally` (never rejects). */
async function sendBatch(producer: Producer, batch: Batch, tally: Tally): Promise<void> {
  let errors: ({ code: string; message: string } | null)[]
  try {
    const { results } = await producer.sendBatch(batch.messages)
    errors = results.map((r) => ('error' in r ? r.error : null))
  } catch (err) {
    const e = err instanceof RaftmqError ? err : new RaftmqError('INTERNAL', err instanceof Error ? err.message : String(err), { cause: err })
    errors = batch.messages.map(() => e)
  }
  errors.forEach((e, i) => {
    if (e !== null) return countFailure(tally, batch.lines[i]!, e)
    tally.sent++
    tally.sentBytes += batch.sizes[i]!
  })
  const first = errors[0]
  if (first && errors.every((e) => e !== null) && !messageErrors.has(first.code)) {
    tally.stopped = first instanceof RaftmqError ? first : RaftmqError.from(first)
  }
}

/** Counts a failed message, reporting it while fewer than `errorLinesMax` have been. */
function countFailure(tally: Tally, line: number, e: { readonly code: string; readonly message: string }): void {
  tally.failed++
  tally.failedByCode.set(e.code, (tally.failedByCode.get(e.code) ?? 0) + 1)
  if (tally.failed <= errorLinesMax) process.stderr.write(`raftmq: line ${line}: ${e.code}: ${e.message}\n`)
  if (tally.failed === errorLinesMax + 1) process.stderr.write('raftmq: more messages failed; counting them without reporting each\n')
}

function count(n: number, noun: string): string {
  return `${n.toLocaleString('en-US')} ${noun}${n === 1 ? '' : 's'}`
}

export function formatBytes(bytes: number): string {
  if (bytes < 1000) return `${bytes} B`
  if (bytes < 1e6) return `${(bytes / 1e3).toFixed(1)} kB`
  if (bytes < 1e9) return `${(bytes / 1e6).toFixed(1)} MB`
  return `${(bytes / 1e9).toFixed(2)} GB`
}
