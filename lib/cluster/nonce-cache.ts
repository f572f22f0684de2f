import { DepositoError } from '../protocol/errors.js'

/**
 * The nonces of the peer requests a node has accepted, each kept until its `ts` can no longer pass the clock
 * check (ts + window): past that, a replay is refused by its age, so memory is only needed inside the window.
 *
 * Entries live in a Map in arrival order and pruning walks from the front, stopping at the first one still
 * needed. Senders' clocks differ, so arrival order is not expiry order; an entry behind a later-expiring one is
 * then kept a little longer (at most one window), never dropped early, which is the direction that is safe.
 * Only requests with a valid MAC reach the cache, so only a holder of the secret can fill it; when full, new
 * requests are refused (BUSY) rather than forgetting a nonce that could then be replayed.
 */
export interface NonceCacheOptions {
  windowMs: number
  maxEntries?: number
}

export class NonceCache {
  readonly #windowMs: number
  readonly #maxEntries: number
  /** nonce → the time after which its request is too old to pass anyway. */
  readonly #expiries = new Map<string, number>()

  constructor({ windowMs, maxEntries = 100_000 }: NonceCacheOptions) {
    this.#windowMs = windowMs
    this.#maxEntries = maxEntries
  }

  get size(): number {
    return this.#expiries.size
  }

  /** Records `nonce`, sent at `ts`; throws UNAUTHORIZED if it was seen already. */
  admit(nonce: string, ts: number, now: number): void {
    this.#prune(now)
    if (this.#expiries.has(nonce)) throw new DepositoError('UNAUTHORIZED', 'peer request replayed (its nonce was seen already)')
    if (this.#expiries.size >= this.#maxEntries) {
      throw new DepositoError('BUSY', 'too many peer requests within the clock window; try again shortly')
    }
    this.#expiries.set(nonce, ts + this.#windowMs)
  }

  #prune(now: number): void {
    for (const [nonce, expiry] of this.#expiries) {
      if (expiry >= now) return
      this.#expiries.delete(nonce)
    }
  }
}
