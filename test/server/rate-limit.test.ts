import t from 'tap'
import { RateLimiter } from '../../lib/server/rate-limit.js'

// The token bucket behind hello's limit, on an injected clock: a burst of the full rate, then a steady trickle.

t.test('a source may spend its whole rate at once, then one token per 60/rate seconds', async (t) => {
  let now = 0
  const limit = new RateLimiter({ perMinute: 3, now: () => now })
  t.same([limit.take('a'), limit.take('a'), limit.take('a'), limit.take('a')], [true, true, true, false], 'a burst of 3, then refused')
  now += 19_999
  t.equal(limit.take('a'), false, 'not quite a token back after 19.999 s')
  now += 1
  t.equal(limit.take('a'), true, 'one token back after 20 s')
  t.equal(limit.take('a'), false)
  t.equal(limit.take('b'), true, 'other sources have their own bucket')
})

t.test('an idle source refills to the rate, no further', async (t) => {
  let now = 0
  const limit = new RateLimiter({ perMinute: 2, now: () => now })
  t.ok(limit.take('a'))
  now += 3_600_000
  t.same([limit.take('a'), limit.take('a'), limit.take('a')], [true, true, false], 'an hour of silence buys 2, not 120')
})

t.test('the map of sources is bounded; the least recently seen is forgotten first', async (t) => {
  const now = 0
  const limit = new RateLimiter({ perMinute: 1, maxSources: 3, now: () => now })
  for (const source of ['a', 'b', 'c']) t.ok(limit.take(source))
  t.notOk(limit.take('a'), 'a touched again: now the most recent')
  t.ok(limit.take('d'), 'a fourth source pushes out b, the least recently seen')
  t.equal(limit.size, 3)
  t.notOk(limit.take('a'), 'a is still remembered, its bucket empty')
  t.ok(limit.take('b'), 'b was forgotten: a full bucket again')
  t.equal(limit.size, 3)
})

t.test('the default clock and bound', async (t) => {
  const limit = new RateLimiter({ perMinute: 1 })
  for (let i = 0; i < 10_001; i++) limit.take(`10.0.${i >> 8}.${i & 255}`)
  t.equal(limit.size, 10_000, 'at most 10,000 sources')
  t.notOk(limit.take('10.0.39.16'), 'the last source spent its token')
})
