import t from 'tap'
import { KeyedMutex } from '../../lib/store/keyed-mutex.js'

/** A promise the test resolves or rejects by hand. */
function gate<T = void>() {
  let resolve!: (value: T) => void
  let reject!: (err: unknown) => void
  const promise = new Promise<T>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

/** Lets queued promise callbacks and I/O callbacks run; a bounded number of event-loop turns, not a timer. */
async function turns(n = 20): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve))
}

t.test('sections of one key never overlap and run in call order', async (t) => {
  const mutex = new KeyedMutex()
  let active = 0
  let maxActive = 0
  const order: number[] = []
  const results = await Promise.all(
    Array.from({ length: 25 }, (_, i) =>
      mutex.run('k', async () => {
        active++
        maxActive = Math.max(maxActive, active)
        for (let j = 0; j < (i % 4) + 1; j++) await new Promise((resolve) => setImmediate(resolve))
        order.push(i)
        active--
        return i * 2
      }),
    ),
  )
  t.equal(maxActive, 1, 'at most one section at a time')
  t.same(order, Array.from({ length: 25 }, (_, i) => i), 'FIFO')
  t.same(results, Array.from({ length: 25 }, (_, i) => i * 2), 'each caller gets its own section result')
})

t.test('a queued section waits for the running one of its key', async (t) => {
  const mutex = new KeyedMutex()
  const hold = gate()
  let secondEntered = false
  const first = mutex.run('k', () => hold.promise)
  const second = mutex.run('k', async () => {
    secondEntered = true
  })
  await turns()
  t.notOk(secondEntered, 'second has not started while first holds the key')
  hold.resolve()
  await first
  await second
  t.ok(secondEntered, 'second ran once first finished')
})

t.test('different keys run concurrently', async (t) => {
  const mutex = new KeyedMutex()
  const hold = gate()
  let bEntered = false
  const a = mutex.run('a', () => hold.promise)
  const b = mutex.run('b', async () => {
    bEntered = true
    return 'b done'
  })
  await turns()
  t.ok(bEntered, 'b entered while a still holds its key')
  t.equal(await b, 'b done', 'b finished before a was released')
  hold.resolve()
  await a
})

t.test('a rejecting section does not block the next', async (t) => {
  const mutex = new KeyedMutex()
  await t.rejects(mutex.run('k', async () => { throw new Error('boom') }), { message: 'boom' })
  t.equal(await mutex.run('k', async () => 'after'), 'after', 'a later call on the key runs')

  const hold = gate()
  const failing = mutex.run('k', () => hold.promise)
  const queued = mutex.run('k', async () => 'queued ran')
  const alsoFailing = mutex.run('k', () => Promise.reject(new Error('second boom')))
  const last = mutex.run('k', async () => 'last ran')
  hold.reject(new Error('held boom'))
  await t.rejects(failing, { message: 'held boom' }, 'the failure reaches its own caller')
  t.equal(await queued, 'queued ran', 'a section queued behind a failure still runs')
  await t.rejects(alsoFailing, { message: 'second boom' })
  t.equal(await last, 'last ran')
})

t.test('a section that throws synchronously is a rejection, not a stuck key', async (t) => {
  const mutex = new KeyedMutex()
  const sync = (() => {
    throw new Error('sync boom')
  }) as unknown as () => Promise<void>
  await t.rejects(mutex.run('k', sync), { message: 'sync boom' })
  t.equal(await mutex.run('k', async () => 1), 1)
})
