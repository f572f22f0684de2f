import t from 'tap'
import { createProgress } from '../../lib/cli/progress.js'
import { exitOnInterrupt, interrupted, onInterrupt } from '../../lib/cli/interrupt.js'
import { Screen, fakeTty } from '../helpers/terminal.js'

// The bar's content and its cleanup; whether it appears at all (TTY or not, --json, -o -) is decided by the
// commands and tested in client-commands.test.ts and deposit-retrieve.test.ts.

/** A whole transfer's frames: start, one update, stop. */
function draw(total: number | undefined, bytes: number): Screen {
  const screen = new Screen()
  const bar = createProgress(true, 'deposit', fakeTty(screen))
  bar.start(total)
  bar.update(bytes)
  bar.stop()
  return screen
}

t.test('a known size: bytes done of total, rate, ETA; cleared when done', async (t) => {
  const screen = draw(4096, 1024)
  t.match(screen.text, /^deposit [█░]+ 0 B \/ 4\.00 KiB 0 B\/s ETA \?/, 'the first frame: nothing done yet, no ETA to give')
  t.match(screen.text, /deposit [█░]+ 1\.00 KiB \/ 4\.00 KiB \d+(\.\d+)? (B|KiB|MiB)\/s ETA \d+s/, 'the last: done of total, rate, ETA')
  t.match(screen.raw, /\x1b\[\?25h[^]*\x1b\[2K$/, 'the cursor shown again and the line cleared at the end')
})

t.test('a pipe (unknown size): bytes and rate only', async (t) => {
  const screen = draw(undefined, 2048)
  t.match(screen.text, /deposit 2\.00 KiB \d+(\.\d+)? (B|KiB|MiB)\/s/)
  t.notMatch(screen.text, /ETA| \/ /, 'no total, no ETA')
})

t.test('disabled: not a byte written', async (t) => {
  const screen = new Screen()
  const bar = createProgress(false, 'retrieve', fakeTty(screen))
  bar.start(10)
  bar.update(5)
  bar.stop()
  t.equal(screen.raw, '')
})

t.test('Ctrl-C mid-transfer clears the bar and shows the cursor before exiting 130', async (t) => {
  const screen = new Screen()
  const bar = createProgress(true, 'retrieve', fakeTty(screen))
  bar.start(100)
  bar.update(10)
  const before = screen.raw.length
  const codes: number[] = []
  interrupted((code) => codes.push(code))
  t.same(codes, [130])
  t.match(screen.raw.slice(before), /\x1b\[\?25h/, 'the cursor is back')
  bar.stop()
})

t.test('a failing cleanup does not stop the others; the SIGINT handler is installed once asked', async (t) => {
  const ran: string[] = []
  const forgetA = onInterrupt(() => {
    ran.push('a')
    throw new Error('stuck')
  })
  onInterrupt(() => ran.push('b'))
  const forgotten = onInterrupt(() => ran.push('never'))
  forgotten()
  interrupted(() => {})
  t.same(ran, ['a', 'b'], 'both ran, the forgotten one did not')
  forgetA()
  interrupted(() => {})
  t.same(ran, ['a', 'b'], 'cleanups run once')

  const before = process.listeners('SIGINT')
  exitOnInterrupt()
  const added = process.listeners('SIGINT').filter((l) => !before.includes(l))
  t.equal(added.length, 1, 'one SIGINT listener')
  for (const l of added) process.off('SIGINT', l)
})

t.test('redraws are throttled to about 10 a second, however often bytes arrive', async (t) => {
  const screen = new Screen()
  const bar = createProgress(true, 'deposit', fakeTty(screen))
  const started = Date.now()
  bar.start(1_000_000)
  for (let bytes = 1; bytes <= 1_000_000; bytes += 10) bar.update(bytes)
  const elapsed = Date.now() - started
  bar.stop()
  const frames = screen.raw.split('deposit ').length - 1
  // 100,000 updates; a frame at start, at most one per 100 ms while they ran, and the final one at stop.
  t.ok(frames <= 2 + Math.ceil(elapsed / 100), `${frames} frames in ${elapsed} ms`)
})
