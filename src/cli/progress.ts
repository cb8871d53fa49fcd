/**
 * A progress line on stderr for long-running commands, drawn only when stderr is a
 * terminal and only once the work has gone on for `delayMs` (so short runs and scripts
 * see nothing). With a known total it is a bar with a percentage and an ETA; without
 * one, a running count.
 *
 * Imports cli-progress.
 */
import cliProgress from 'cli-progress'

export interface ProgressOptions {
  /** The value that means done, or null when it is not known in advance. */
  readonly total: number | null
  /** What the counter counts, shown after it when there is no total: "messages". */
  readonly unit: string
  /** Draw only after this long (default 0: at once). */
  readonly delayMs?: number
  /** Turns a value into the text shown for it (default: with thousands separators). */
  readonly formatValue?: (value: number) => string
}

export class Progress {
  readonly #opts: ProgressOptions
  readonly #show: (value: number) => string
  readonly #startTimer: NodeJS.Timeout | null = null
  #bar: cliProgress.SingleBar | null = null
  #value = 0
  #detail = ''

  constructor(opts: ProgressOptions) {
    this.#opts = opts
    this.#show = opts.formatValue ?? ((v: number) => v.toLocaleString('en-US'))
    if (!process.stderr.isTTY) return
    this.#startTimer = setTimeout(() => this.#start(), opts.delayMs ?? 0)
    this.#startTimer.unref()
  }

  #start(): void {
    const format =
      this.#opts.total === null
        ? `{shown} ${this.#opts.unit} | {detail} | {duration_formatted}`
        : '{bar} {percentage}% | {shown} of {shownTotal} | {detail} | eta {eta_formatted}'
    this.#bar = new cliProgress.SingleBar({ format, hideCursor: true, clearOnComplete: false, fps: 10 }, cliProgress.Presets.shades_classic)
    this.#bar.start(this.#opts.total ?? 0, this.#value, this.#payload())
  }

  #payload(): Record<string, string> {
    return { shown: this.#show(this.#value), shownTotal: this.#opts.total === null ? '' : this.#show(this.#opts.total), detail: this.#detail }
  }

  /** Sets the progress to `value`, with `detail` as free text beside it. */
  update(value: number, detail = ''): void {
    this.#value = value
    this.#detail = detail
    this.#bar?.update(value, this.#payload())
  }

  /** Draws the last state (if drawing) and stops; the line stays on screen. */
  stop(): void {
    if (this.#startTimer) clearTimeout(this.#startTimer)
    this.#bar?.stop()
    this.#bar = null
  }
}
