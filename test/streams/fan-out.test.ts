import t, { type Test } from 'tap'
import { createHash, type Hash } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { once } from 'node:events'
import { createServer, connect, type AddressInfo, type Socket } from 'node:net'
import { join } from 'node:path'
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { FanOut, type FanOutTarget } from '../../lib/streams/fan-out.js'

const CHUNK = 64 * 1024
const STALL_MS = 50
const chunkOf = (i: number) => Buffer.alloc(CHUNK, i % 251).fill(i >> 8, 0, 1)
const sha256 = (h: Hash) => h.digest('hex')

const expected = (n: number) => sha256(Array.from({ length: n }, (_, i) => chunkOf(i)).reduce((h, c) => h.update(c), createHash('sha256')))

/** `n` chunks, distinct so that order matters; `onYield` sees how many were produced so far. */
function source(n: number, onYield: (produced: number) => void = () => {}): Readable {
  return Readable.from((function* () {
    for (let i = 0; i < n; i++) {
      onYield(i + 1)
      yield chunkOf(i)
    }
  })())
}

type Sink = Writable & { hash: Hash; writes: number; first?: Buffer; maxLength: number }

/** A collecting target. `hops`: setImmediate rounds before each write calls back; `onWrite` may replace the callback. */
function sink({ hops = 0, highWaterMark, onWrite }: { hops?: number; highWaterMark?: number; onWrite?: (n: number, cb: (err?: Error) => void) => boolean } = {}): Sink {
  const s = new Writable({
    highWaterMark,
    write(chunk: Buffer, _enc, cb) {
      s.maxLength = Math.max(s.maxLength, s.writableLength)
      s.first ??= chunk
      s.writes++
      if (onWrite?.(s.writes, cb)) return
      s.hash.update(chunk)
      let left = hops
      const next = () => (left-- > 0 ? setImmediate(next) : cb())
      next()
    },
  }) as Sink
  return Object.assign(s, { hash: createHash('sha256'), writes: 0, maxLength: 0 })
}

const targets = (sinks: Record<string, Writable>, required: string[] = []): FanOutTarget[] =>
  Object.entries(sinks).map(([name, stream]) => ({ name, stream, required: required.includes(name) }))

t.test('every target gets every byte, in order, as the very same buffers', async (t) => {
  const sinks = { a: sink(), b: sink({ hops: 1 }), c: sink() }
  const fan = new FanOut(targets(sinks, ['a']), { stallTimeoutMs: 5_000 })
  await pipeline(source(64), fan)
  for (const s of Object.values(sinks)) {
    t.equal(sha256(s.hash), expected(64))
    t.ok(s.writableFinished)
  }
  for (const s of [sinks.b, sinks.c]) t.equal(s.first, sinks.a.first, 'the same Buffer, not a copy')
  t.same(fan.live, ['a', 'b', 'c'])
  t.same(fan.dropped, [])
})

t.test('nothing and nobody: an empty stream, and a fan-out with no targets', async (t) => {
  const empty = sink()
  await pipeline(source(0), new FanOut(targets({ empty }), { stallTimeoutMs: 5_000 }))
  t.equal(empty.writes, 0)
  t.ok(empty.writableFinished)
  const none = new FanOut([], { stallTimeoutMs: 5_000 })
  await pipeline(source(3), none)
  t.same(none.live, [])
})

t.test('the slowest target paces the source and nobody buffers the file', async (t) => {
  const N = 256
  const slow = sink({ hops: 5 })
  const sinks = { fast: sink(), slow, other: sink({ hops: 1 }) }
  let ahead = 0
  await pipeline(source(N, (produced) => (ahead = Math.max(ahead, produced - slow.writes))), new FanOut(targets(sinks), { stallTimeoutMs: 5_000 }))
  // Readable.from holds 1 object (its highWaterMark), the fan-out 1 chunk in _write, the slow target 1 in write:
  // a 64 KiB chunk fills any 16 KiB highWaterMark, so every stage waits for 'drain'. Unpaced, ahead would be ~N.
  t.ok(ahead <= 4, `source got at most ${ahead} chunks ahead of the slowest target`)
  for (const [name, s] of Object.entries(sinks)) {
    t.equal(sha256(s.hash), expected(N), name)
    t.ok(s.maxLength <= CHUNK, `${name} held at most ${s.maxLength} bytes`)
  }
})

t.test('optional targets that error or close early are dropped and the rest go on', async (t) => {
  const boom = new Error('mirror disk on fire')
  const flaky = sink({ onWrite: (n, cb) => n === 10 && (cb(boom), true) })
  const quitter = sink({ onWrite: (n) => n === 5 && (quitter.destroy(), true) })
  const sinks = { local: sink(), flaky, quitter, other: sink({ hops: 2 }) }
  const fan = new FanOut(targets(sinks, ['local']), { stallTimeoutMs: 5_000 })
  await pipeline(source(40), fan)
  t.match(fan.dropped, [{ name: 'quitter', error: { code: 'CONNECTION_LOST' } }, { name: 'flaky', error: boom }])
  t.same(fan.live, ['local', 'other'])
  t.ok(flaky.destroyed)
  t.equal(sha256(sinks.local.hash), expected(40))
  t.equal(sha256(sinks.other.hash), expected(40))
})

t.test('a required target that errors fails the pipeline and destroys the others', async (t) => {
  const boom = new Error('local disk full')
  const local = sink({ onWrite: (n, cb) => n === 10 && (cb(boom), true) })
  const others = { m1: sink(), m2: sink({ hops: 3 }) }
  const fan = new FanOut(targets({ local, ...others }, ['local']), { stallTimeoutMs: 5_000 })
  await t.rejects(pipeline(source(40), fan), boom)
  for (const s of Object.values(others)) {
    t.ok(s.destroyed)
    t.notOk(s.writableFinished, 'never saw a clean end')
  }
  t.ok(fan.destroyed)
})

t.test('a required target that errors while no write is waiting fails the fan-out too', async (t) => {
  const [local, other] = [sink(), sink()]
  const fan = new FanOut(targets({ local, other }, ['local']), { stallTimeoutMs: 5_000 })
  const boom = new Error('disk gone while idle')
  const failed = new Promise((resolve) => fan.on('error', resolve))
  local.destroy(boom)
  t.equal(await failed, boom)
  t.ok(other.destroyed)
})

t.test('an optional target that never drains is cut off; a slow required one is waited for', async (t) => {
  const local = sink({ onWrite: (n, cb) => n === 2 && (setTimeout(cb, 3 * STALL_MS), true) })
  const stuck = sink({ onWrite: (n) => n === 2 })
  const ok = sink()
  const fan = new FanOut(targets({ local, stuck, ok }, ['local']), { stallTimeoutMs: STALL_MS })
  const start = performance.now()
  await pipeline(source(10), fan)
  t.ok(performance.now() - start >= 3 * STALL_MS - 5, 'waited for the required target past the stall timeout')
  t.match(fan.dropped, [{ name: 'stuck', error: { code: 'TIMEOUT', message: /did not drain within 50 ms/ } }])
  t.ok(stuck.destroyed)
  t.same(fan.live, ['local', 'ok'])
  t.equal(local.writes, 10)
  t.equal(sha256(ok.hash), expected(10))
})

t.test('targets that fail at the end: never finishing, destroyed while ending, a failing final', async (t) => {
  const hang = new Writable({ write: (_c, _e, cb) => cb(), final() {} })
  const quitter = new Writable({ write: (_c, _e, cb) => cb(), final: () => quitter.destroy() })
  // Destroyed right after end() with a write still in flight: finished() itself reports a premature close.
  const reset = sink({ highWaterMark: 1 << 20, onWrite: (n) => n === 3 })
  const end = reset.end.bind(reset)
  reset.end = () => (end(), reset.destroy())
  const fan = new FanOut(targets({ hang, quitter, reset, ok: sink() }), { stallTimeoutMs: STALL_MS })
  await pipeline(source(3), fan)
  t.match(fan.dropped, [
    { name: 'quitter', error: { code: 'CONNECTION_LOST', message: /closed before it finished/ } },
    { name: 'reset', error: { code: 'ERR_STREAM_PREMATURE_CLOSE' } },
    { name: 'hang', error: { code: 'TIMEOUT', message: /did not finish/ } },
  ])
  t.same(fan.live, ['ok'])
  const boom = new Error('fsync failed')
  const local = new Writable({ write: (_c, _e, cb) => cb(), final: (cb) => cb(boom) })
  const other = sink()
  await t.rejects(pipeline(source(3), new FanOut(targets({ local, other }, ['local']), { stallTimeoutMs: 5_000 })), boom)
  t.ok(other.destroyed)
})

t.test('no timer outlives the fan-out', async (t) => {
  const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length
  const before = timers()
  await pipeline(source(50), new FanOut(targets({ a: sink({ hops: 2 }), b: sink() }), { stallTimeoutMs: 60_000 }))
  t.equal(timers(), before)
})

t.test('destroying the fan-out destroys every target, with its error or a generic one', async (t) => {
  for (const err of [new Error('client went away'), undefined]) {
    const sinks = { stuck: new Writable({ highWaterMark: 1, write() {} }), idle: sink() }
    const fan = new FanOut(targets(sinks, ['idle']), { stallTimeoutMs: 60_000 })
    const heard: unknown[] = []
    fan.on('error', (e) => heard.push(e))
    fan.write(chunkOf(0), (e) => heard.push(e))
    fan.destroy(err)
    // Not events.once: it rejects on the 'error' that comes before 'close'.
    await Promise.all([fan, ...Object.values(sinks)].map((s) => new Promise((resolve) => s.on('close', resolve))))
    t.match(heard, err ? [err, err] : [{ code: 'CONNECTION_LOST' }], 'the pending write hears why')
    for (const s of Object.values(sinks)) t.match(s.errored, err ?? { code: 'CONNECTION_LOST' })
    t.same(fan.live, [])
  }
})

t.test('stallTimeoutMs must be something setTimeout can wait for', async (t) => {
  for (const ms of [0, Infinity, NaN, 2 ** 31]) t.throws(() => new FanOut([], { stallTimeoutMs: ms }), RangeError)
})

/** A server that hashes what each connection sends, and can cut one connection after `cutAfter` bytes. */
async function mirrorServer(t: Test, cutAfter = Infinity) {
  const received = new Map<number, Promise<{ hash: string; bytes: number }>>()
  const copies = new Map<Socket, Promise<{ hash: string; bytes: number }>>()
  const victims = new Set<number>()
  const open = new Set<Socket>()
  const server = createServer((s) => {
    open.add(s)
    s.on('error', () => {}).on('close', () => open.delete(s))
    const h = createHash('sha256')
    let bytes = 0
    s.on('data', (d: Buffer) => {
      h.update(d)
      bytes += d.length
      if (victims.has(s.remotePort!) && bytes > cutAfter) s.destroy()
    })
    received.set(s.remotePort!, once(s, 'end').then(() => ({ hash: h.digest('hex'), bytes })))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => {
    for (const s of open) s.destroy()
    server.close()
  })
  const mirror = async (victim = false) => {
    const sock = connect((server.address() as AddressInfo).port, '127.0.0.1')
    await once(sock, 'connect')
    // The client can see the connection before the server's 'connection' event has run.
    while (!received.has(sock.localPort!)) await once(server, 'connection')
    if (victim) victims.add(sock.localPort!)
    // Keyed by the socket: its localPort is gone once it closes.
    copies.set(sock, received.get(sock.localPort!)!)
    return sock
  }
  return { mirror, received: (sock: Socket) => copies.get(sock)! }
}

const fileHash = async (path: string) => sha256(createHash('sha256').update(await readFile(path)))

t.test('real sockets and a real file: 20 MiB, three equal copies', async (t) => {
  const N = 320
  const { mirror, received } = await mirrorServer(t)
  const [m1, m2] = [await mirror(), await mirror()]
  const path = join(t.testdir(), 'upload')
  const local = createWriteStream(path)
  const fan = new FanOut(targets({ local, m1, m2 }, ['local']), { stallTimeoutMs: 30_000 })
  await pipeline(source(N), fan)
  t.ok(local.closed, 'the file is closed by the time the pipeline resolves')
  const want = expected(N)
  t.same(await received(m1), { hash: want, bytes: N * CHUNK })
  t.same(await received(m2), { hash: want, bytes: N * CHUNK })
  t.equal(await fileHash(path), want)
  t.same(fan.live, ['local', 'm1', 'm2'])
})

t.test('real sockets: a mirror whose peer dies mid-transfer is dropped', async (t) => {
  const N = 320
  const { mirror, received } = await mirrorServer(t, 2 * 1024 * 1024)
  const [victim, m2] = [await mirror(true), await mirror()]
  const path = join(t.testdir(), 'upload')
  const fan = new FanOut(targets({ local: createWriteStream(path), victim, m2 }, ['local']), { stallTimeoutMs: 30_000 })
  await pipeline(source(N), fan)
  t.match(fan.dropped, [{ name: 'victim', error: Error }])
  t.notMatch(fan.dropped[0].error.message, /did not/, `cut off by its own error (${fan.dropped[0].error.message}), not a stall`)
  t.same(fan.live, ['local', 'm2'])
  t.equal((await received(m2)).hash, expected(N))
  t.equal(await fileHash(path), expected(N))
})
