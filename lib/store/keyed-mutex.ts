/**
 * Serialises async critical sections per key. The store's commits are short (a rename, a metadata write, a few
 * fsyncs) but they read-modify-write a client's index and collect unreferenced blobs, which two interleaved
 * commits of one client could get wrong. Different keys never wait on each other.
 */
export class KeyedMutex {
  readonly #tails = new Map<string, Promise<unknown>>()

  async run<T>(key: string, section: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve()
    const result = previous.then(section, section)
    const tail = result.then(
      () => {},
      () => {},
    )
    this.#tails.set(key, tail)
    try {
      return await result
    } finally {
      if (this.#tails.get(key) === tail) this.#tails.delete(key)
    }
  }
}
