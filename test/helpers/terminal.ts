import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { PassThrough, Writable } from 'node:stream'
import type { Test } from 'tap'
import { ROOT } from './bins.js'

/**
 * Menus under test: a screen that records what a terminal would show, and keys typed only once the prompt they
 * answer is on it. Two ways to get one: in-process (a PassThrough for keys, a fake TTY for the screen), or a real
 * pseudo-terminal around a spawned bin, made by util-linux `script`. Every wait is bounded.
 */
export const KEY = { enter: '\r', ctrlC: '\x03', down: '\x1b[B' } as const

// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[()][0-9A-Za-z]|\x1b[78]|\r/g

/** Text drawn so far, escape sequences stripped; `waitFor` looks only past what earlier waits consumed. */
export class Screen {
  raw = ''
  #seen = 0
  #listeners = new Set<() => void>()

  get text(): string {
    return this.raw.replace(ANSI, '')
  }

  append(chunk: string): void {
    this.raw += chunk
    for (const listener of this.#listeners) listener()
  }

  /** Resolves with the new text up to and including the first match of `pattern` after the last wait's match. */
  waitFor(pattern: RegExp, timeoutMs = 15_000): Promise<string> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const text = this.text
        const match = pattern.exec(text.slice(this.#seen))
        if (!match) return
        const end = this.#seen + match.index + match[0].length
        const seen = text.slice(this.#seen, end)
        this.#seen = end
        done()
        resolve(seen)
      }
      const timer = setTimeout(() => {
        done()
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${pattern}; screen since the last match:\n${this.text.slice(this.#seen)}`))
      }, timeoutMs)
      const done = () => {
        clearTimeout(timer)
        this.#listeners.delete(check)
      }
      this.#listeners.add(check)
      check()
    })
  }
}

/** A Writable that looks like a terminal to inquirer and cli-progress, drawing onto `screen`. */
export function fakeTty(screen: Screen): NodeJS.WriteStream {
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      screen.append(chunk.toString())
      cb()
    },
  })
  // Like process.stdout, it outlives whoever pipes into it: each inquirer prompt pipes in, then ends its pipe.
  // Wide, so long temp paths are not broken across lines.
  const end = () => stream
  return Object.assign(stream, { isTTY: true, columns: 1000, rows: 40, end }) as unknown as NodeJS.WriteStream
}

export interface Keyboard {
  input: PassThrough
  screen: Screen
  /** Waits for `prompt` on the screen, then types `keys`. */
  answer(prompt: RegExp, keys: string): Promise<string>
}

function typist(screen: Screen, input: NodeJS.WritableStream): Keyboard['answer'] {
  return async (prompt, keys) => {
    const seen = await screen.waitFor(prompt)
    input.write(keys)
    return seen
  }
}

export function keyboard(screen = new Screen()): Keyboard {
  const input = new PassThrough()
  return { input, screen, answer: typist(screen, input) }
}

// -------------------------------------------------------------------------------------------- pseudo-terminal

export interface PtyProcess extends Omit<Keyboard, 'input'> {
  /** Keys typed straight into the terminal. */
  input: NodeJS.WritableStream
  proc: ChildProcess
  /** The exit status of the program inside the terminal (`script -e` passes it on). */
  exit: Promise<number | null>
}

/** Why a PTY cannot be had here, or undefined when `script` (util-linux) is available. */
export function ptyUnavailable(): string | undefined {
  const probe = spawnSync('script', ['--version'], { encoding: 'utf8' })
  return probe.status === 0 && /util-linux/.test(probe.stdout) ? undefined : 'util-linux `script` is not installed'
}

const quote = (arg: string) => `'${arg.replace(/'/g, `'\\''`)}'`

/**
 * Runs `node BIN ARGS` on a fresh pseudo-terminal of 120×40 (stdin, stdout and stderr all the terminal, as in a
 * shell), without NODE_OPTIONS for the reason given in bins.ts. Killed when the test ends.
 */
export function spawnInPty(t: Test, bin: string, args: string[], env: NodeJS.ProcessEnv, cwd = ROOT): PtyProcess {
  const command = `stty cols 120 rows 40; exec env -u NODE_OPTIONS ${[process.execPath, bin, ...args].map(quote).join(' ')}`
  const proc = spawn('script', ['--quiet', '--flush', '--return', '--command', command, '/dev/null'], {
    cwd,
    env: { ...env, SHELL: '/bin/sh' },
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  const screen = new Screen()
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => screen.append(d))
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => screen.append(d))
  const exit = once(proc, 'exit').then(([code]) => code as number | null)
  t.teardown(async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL')
    await exit
  })
  return { proc, exit, screen, input: proc.stdin!, answer: typist(screen, proc.stdin!) }
}
