import { finished, Writable } from 'node:stream'
import { DepositoError } from '../protocol/errors.js'

/**
 * The tee at the end of a deposit: every chunk it is given goes, as the same Buffer, to the primary's temp file
 * and to each replica stream at once. It calls back only when every target has taken the chunk or drained, so
 * the slowest target paces the socket upstream and nothing ever holds more than a chunk or two per target.
 *
 * All targets are handed over at construction, so none can miss bytes that flowed before it was attached (the
 * hazard minipass warns about for tees built with several `pipe()` calls).
 *
 * A required target (the local file) that fails fails the fan-out, and through the pipeline everything else. An
 * optional one (a mirror) that fails, closes early, or stalls for `stallTimeoutMs` is cut off and the rest go on:
 * one slow mirror must not hold a deposit hostage, and the deposit reports fewer copies instead.
 */
export interface FanOutTarget {
  /** For logs and for the result, e.g. the mirror's address or 'local'. */
  name: string
  stream: Writable
  /** A required target's failure fails the whole fan-out; an optional one is dropped and the rest go on. */
  required: boolean
}

export interface FanOutOptions {
  /** An optional target that has not drained (or finished, at the end) for this long is cut off. */
  stallTimeoutMs: number
}

export interface DroppedTarget {
  name: string
  error: Error
}

/** live: taking writes; ending: end() called, waiting for it to finish; cut: destroyed with the fan-out. */
type State = 'live' | 'ending' | 'done' | 'dropped' | 'failed' | 'cut'

interface Attached {
  readonly target: FanOutTarget
  state: State
  readonly onDrain: () => void
  readonly onClose: () => void
  /** Removes the listeners `finished()` added while the target is ending. */
  stopWatching?: () => void
}

/** One write (or the final end) waiting for the targets in `pending`. */
interface Wait {
  readonly pending: Set<Attached>
  readonly done: (err?: Error | null) => void
  timer?: NodeJS.Timeout
}

const MAX_TIMEOUT_MS = 2 ** 31 - 1

export class FanOut extends Writable {
  readonly #targets: Attached[]
  readonly #stallTimeoutMs: number
  readonly #dropped: DroppedTarget[] = []
  #wait: Wait | null = null

  constructor(targets: FanOutTarget[], { stallTimeoutMs }: FanOutOptions) {
    super()
    // setTimeout turns anything it cannot represent (Infinity, NaN, > 2^31-1) into 1 ms: every mirror would stall.
    if (!(stallTimeoutMs > 0 && stallTimeoutMs <= MAX_TIMEOUT_MS)) {
      throw new RangeError(`stallTimeoutMs must be between 1 and ${MAX_TIMEOUT_MS}, got ${stallTimeoutMs}`)
    }
    this.#stallTimeoutMs = stallTimeoutMs
    this.#targets = targets.map((target) => this.#attach(target))
  }

  /** Names of targets still attached and healthy (after a clean end: those that finished). */
  get live(): string[] {
    return this.#targets.filter((a) => a.state === 'live' || a.state === 'ending' || a.state === 'done').map((a) => a.target.name)
  }

  /** Optional targets cut off while the others went on, with why. */
  get dropped(): DroppedTarget[] {
    return [...this.#dropped]
  }

  #attach(target: FanOutTarget): Attached {
    const a: Attached = {
      target,
      state: 'live',
      // A 'drain' while ending belongs to end(), not to a write; `finished()` decides that phase.
      onDrain: () => a.state === 'live' && this.#release(a),
      onClose: () => a.state === 'live' && this.#lose(a, new DepositoError('CONNECTION_LOST', `${target.name} closed before the end of the stream`)),
    }
    // Never removed: a stream we destroy emits its error a tick later, and a socket can still reset after its last
    // byte. Once the target is settled the error means nothing to us, but it must not become an uncaught exception.
    target.stream.on('error', (err: Error) => (a.state === 'live' || a.state === 'ending') && this.#lose(a, err))
    target.stream.on('drain', a.onDrain)
    target.stream.on('close', a.onClose)
    return a
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    const pending = new Set<Attached>()
    for (const a of this.#targets) {
      // write() also returns false for a destroyed or ended target; its 'error' or 'close' then settles it.
      if (a.state === 'live' && !a.target.stream.write(chunk)) pending.add(a)
    }
    this.#await(pending, cb)
  }

  override _final(cb: (err?: Error | null) => void): void {
    const ending = this.#targets.filter((a) => a.state === 'live')
    for (const a of ending) {
      a.state = 'ending'
      // With `readable: false`, finished() waits for 'close' after 'finish' on a plain Writable that will emit
      // one (an fs stream: its fd closed, the bytes flushed), but only for 'finish' on a Duplex, whose 'close'
      // also waits for its readable side (a socket's peer, an encoder's consumer) and is not ours to wait for.
      a.stopWatching = finished(a.target.stream, { readable: false }, (err) => this.#ended(a, err))
      a.target.stream.end()
    }
    this.#await(new Set(ending), cb)
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    const reason = err ?? new DepositoError('CONNECTION_LOST', 'the fan-out was destroyed before its end')
    const wait = this.#endWait()
    for (const a of this.#targets) {
      if (a.state !== 'live' && a.state !== 'ending') continue
      a.state = 'cut'
      this.#detach(a)
      a.target.stream.destroy(reason)
    }
    cb(err)
    // Harmless once destroyed (Node ignores it), and a caller's write callback hears why its chunk went nowhere.
    wait?.done(reason)
  }

  /** Only while ending: #detach's stopWatching() silences finished() for good once the target is settled. */
  #ended(a: Attached, err: Error | null | undefined): void {
    // finished() also calls a stream that was destroyed after end() with nothing buffered a success (it checks
    // "ended and empty", not 'finish'), though its _final never completed: a mirror's trailer may not be out.
    const failure = err ?? (a.target.stream.writableFinished ? null : new DepositoError('CONNECTION_LOST', `${a.target.name} closed before it finished`))
    if (failure) return this.#lose(a, failure)
    a.state = 'done'
    this.#detach(a)
    this.#release(a)
  }

  #await(pending: Set<Attached>, done: (err?: Error | null) => void): void {
    if (pending.size === 0) return done()
    // Required targets never time out here: the server's own idle timeouts cover a stuck disk or client.
    const wait: Wait = { pending, done }
    if ([...pending].some((a) => !a.target.required)) wait.timer = setTimeout(() => this.#stalled(wait), this.#stallTimeoutMs)
    this.#wait = wait
  }

  /** Runs only while `wait` is current: the timer is cleared whenever a wait ends. */
  #stalled(wait: Wait): void {
    for (const a of [...wait.pending]) {
      if (a.target.required) continue
      const what = a.state === 'ending' ? 'finish' : 'drain'
      this.#drop(a, new DepositoError('TIMEOUT', `${a.target.name} did not ${what} within ${this.#stallTimeoutMs} ms`))
    }
  }

  #lose(a: Attached, err: Error): void {
    if (!a.target.required) return this.#drop(a, err)
    a.state = 'failed'
    this.#detach(a)
    const wait = this.#endWait()
    // Failing the pending callback lets Writable destroy us with err; between writes we must do it ourselves.
    if (wait) wait.done(err)
    else this.destroy(err)
  }

  #drop(a: Attached, err: Error): void {
    a.state = 'dropped'
    this.#detach(a)
    this.#dropped.push({ name: a.target.name, error: err })
    if (!a.target.stream.destroyed) a.target.stream.destroy(err)
    this.#release(a)
  }

  /** `a` no longer holds up the current wait; the last one out calls it back. */
  #release(a: Attached): void {
    const wait = this.#wait
    if (!wait?.pending.delete(a) || wait.pending.size > 0) return
    this.#endWait()
    wait.done()
  }

  #endWait(): Wait | null {
    const wait = this.#wait
    if (wait) clearTimeout(wait.timer)
    this.#wait = null
    return wait
  }

  #detach(a: Attached): void {
    a.target.stream.off('drain', a.onDrain)
    a.target.stream.off('close', a.onClose)
    a.stopWatching?.()
    a.stopWatching = undefined
  }
}
