import { SingleBar } from 'cli-progress'
import { formatBytes, formatDuration } from './format.js'
import { onInterrupt } from './interrupt.js'

/**
 * A progress line on stderr: bytes done (of total, when known), rate and ETA. cli-progress throttles redraws
 * (10 per second here) and clears the line when done, so stdout stays clean for `-o -` and --json.
 */
export interface Progress {
  start(total: number | undefined): void
  update(bytes: number): void
  stop(): void
}

const silent: Progress = { start() {}, update() {}, stop() {} }

export function createProgress(enabled: boolean, label: string, stream: NodeJS.WriteStream = process.stderr): Progress {
  if (!enabled) return silent
  let total: number | undefined
  const started = Date.now()
  const bar = new SingleBar({
    stream,
    fps: 10,
    clearOnComplete: true,
    hideCursor: true,
    barsize: 24,
    format: (options, params) => {
      const seconds = Math.max((Date.now() - started) / 1000, 0.001)
      const rate = Math.round(params.value / seconds)
      const done = formatBytes(params.value)
      if (total === undefined) return `${label} ${done} ${formatBytes(rate)}/s`
      const filled = Math.round(params.progress * (options.barsize ?? 24))
      const barText = '█'.repeat(filled) + '░'.repeat((options.barsize ?? 24) - filled)
      const eta = rate > 0 ? formatDuration((total - params.value) / rate) : '?'
      return `${label} ${barText} ${done} / ${formatBytes(total)} ${formatBytes(rate)}/s ETA ${eta}`
    },
  })
  // Ctrl-C mid-transfer: clear the line and show the cursor again rather than leave the terminal without one.
  let forget = () => {}
  return {
    start(size) {
      total = size
      bar.start(size ?? 0, 0)
      forget = onInterrupt(() => bar.stop())
    },
    update(bytes) {
      bar.update(bytes)
    },
    stop() {
      bar.stop()
      forget()
    },
  }
}
