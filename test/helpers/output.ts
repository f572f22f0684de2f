import { Writable } from 'node:stream'
import type { Output } from '../../lib/cli/client-commands.js'

/** A stand-in for stdout or stderr that keeps what was written, as text. */
export class Collector extends Writable {
  text = ''
  isTTY?: boolean
  columns?: number
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.text += chunk.toString()
    cb()
  }
}

/** An Output for the command functions, writing into two Collectors; `tty` makes stderr look like a terminal. */
export function output(options: Partial<Pick<Output, 'json' | 'quiet' | 'progress'>> = {}, tty = false) {
  const stdout = new Collector()
  const stderr = new Collector()
  if (tty) Object.assign(stderr, { isTTY: true, columns: 100 })
  const out: Output = {
    json: false,
    quiet: false,
    progress: false,
    ...options,
    stdout: stdout as unknown as NodeJS.WriteStream,
    stderr: stderr as unknown as NodeJS.WriteStream,
  }
  return { out, stdout, stderr }
}
