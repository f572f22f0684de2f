import t from 'tap'
import { NonceCache } from '../../lib/cluster/nonce-cache.js'

/** The replay memory (lib/cluster/nonce-cache.ts), driven by an injected clock. */
const WINDOW = 1_000
const nonce = (i: number) => i.toString(16).padStart(32, '0')

t.test('a nonce is refused while its request could still pass the clock check, and forgotten after', async (t) => {
  const cache = new NonceCache({ windowMs: WINDOW })
  cache.admit(nonce(1), 10_000, 10_000)
  t.throws(() => cache.admit(nonce(1), 10_000, 10_000 + WINDOW), { code: 'UNAUTHORIZED', message: /replayed/ }, 'at the edge of the window')
  cache.admit(nonce(2), 10_000 + WINDOW, 10_000 + WINDOW + 1)
  t.equal(cache.size, 1, 'the first is pruned once its ts is out of the window')
  t.doesNotThrow(() => cache.admit(nonce(1), 10_000, 10_000 + WINDOW + 1), 'and can be admitted again (the clock check refuses such a request first)')
})

t.test('a request from a clock ahead is kept until its own ts leaves the window', async (t) => {
  const cache = new NonceCache({ windowMs: WINDOW })
  cache.admit(nonce(1), 5_000 + WINDOW, 5_000)
  t.throws(() => cache.admit(nonce(1), 5_000 + WINDOW, 5_000 + 2 * WINDOW), { code: 'UNAUTHORIZED' }, 'two windows after arrival it is still remembered')
  cache.admit(nonce(2), 9_000, 5_000 + 2 * WINDOW + 1)
  t.equal(cache.size, 1, 'pruned just after')
})

t.test('the cache is bounded: when full of live nonces, new requests are refused, nothing is forgotten early', async (t) => {
  const cache = new NonceCache({ windowMs: WINDOW, maxEntries: 3 })
  for (let i = 0; i < 3; i++) cache.admit(nonce(i), 1_000 + i, 1_000 + i)
  t.throws(() => cache.admit(nonce(9), 1_010, 1_010), { code: 'BUSY' }, 'full')
  t.throws(() => cache.admit(nonce(0), 1_000, 1_010), { code: 'UNAUTHORIZED' }, 'the oldest is still remembered')
  cache.admit(nonce(9), 2_002, 2_002)
  t.equal(cache.size, 2, 'time frees room: the first two expired (ts 1_000 and 1_001, plus the window)')
})

t.test('a late-expiring entry at the front delays pruning behind it, never the other way', async (t) => {
  const cache = new NonceCache({ windowMs: WINDOW })
  cache.admit(nonce(1), 3_000, 2_000) // expires at 4_000
  cache.admit(nonce(2), 1_500, 2_000) // expires at 2_500, but sits behind nonce 1
  t.throws(() => cache.admit(nonce(2), 1_500, 2_400), { code: 'UNAUTHORIZED' }, 'still within its own window')
  t.throws(() => cache.admit(nonce(2), 1_500, 3_000), { code: 'UNAUTHORIZED' }, 'kept longer than needed: the safe direction')
  cache.admit(nonce(3), 4_500, 4_001)
  t.equal(cache.size, 1, 'both go once the front one expires')
})
