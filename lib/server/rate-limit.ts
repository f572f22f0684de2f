/**
 * A token bucket per source: `perMinute` tokens, refilled continuously, so a source may spend a burst of
 * `perMinute` at once and then one every 60/perMinute seconds. The map of sources is bounded: beyond
 * `maxSources` the least recently seen source is forgotten (a Map keeps insertion order, and a touched source is
 * re-inserted at the end), so a flood of distinct addresses costs at most that many entries. A forgotten source
 * starts again with a full bucket: the bound trades exactness for memory, and an attacker who owns that many
 * addresses could mint as many ids from them anyway.
 */
export interface RateLimitOptions {
  perMinute: number
  maxSources?: number
  /** Milliseconds; injected by tests. */
  now?: () => number
}

interface Bucket {
  tokens: number
  at: number
}

export class RateLimiter {
  readonly #buckets = new Map<string, Bucket>()
  readonly #perMs: number
  readonly #capacity: number
  readonly #maxSources: number
  readonly #now: () => number

  constructor({ perMinute, maxSources = 10_000, now = Date.now }: RateLimitOptions) {
    this.#capacity = perMinute
    this.#perMs = perMinute / 60_000
    this.#maxSources = maxSources
    this.#now = now
  }

  /** Spends one token of `source`: false when it has none left. */
  take(source: string): boolean {
    const now = this.#now()
    const old = this.#buckets.get(source)
    const bucket = old ? { tokens: Math.min(this.#capacity, old.tokens + (now - old.at) * this.#perMs), at: now } : { tokens: this.#capacity, at: now }
    this.#buckets.delete(source)
    this.#buckets.set(source, bucket)
    if (this.#buckets.size > this.#maxSources) this.#buckets.delete(this.#buckets.keys().next().value!)
    if (bucket.tokens < 1) return false
    bucket.tokens -= 1
    return true
  }

  /** How many sources are remembered (for tests of the bound). */
  get size(): number {
    return this.#buckets.size
  }
}
