import t from 'tap'
import fc from 'fast-check'
import { createHash } from 'node:crypto'
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { hashPrefix, hashVerifier, type HashingStream } from '../../lib/streams/hash-verifier.js'

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex')
const EMPTY = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'

async function run(input: Buffer[], stream: HashingStream, out: Buffer[] = []): Promise<Buffer> {
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      out.push(chunk)
      cb()
    },
  })
  await pipeline(Readable.from(input), stream, sink)
  return Buffer.concat(out)
}

const DATA = [Buffer.from('hello '), Buffer.from([0x00, 0xff, 0x0a]), Buffer.from('world')]
const ALL = Buffer.concat(DATA)

t.test('a match passes the bytes through unchanged', async (t) => {
  const v = hashVerifier({ expected: () => sha256(ALL) })
  const out: Buffer[] = []
  const bytes = await run(DATA, v, out)
  t.ok(bytes.equals(ALL))
  t.equal(out.length, DATA.length, 'chunk boundaries kept')
  out.forEach((c, i) => t.ok(c.equals(DATA[i]), `chunk ${i}`))
  t.equal(v.digest, sha256(ALL))
  t.equal(v.bytes, ALL.length)
})

t.test('getters before, during and after', async (t) => {
  const v = hashVerifier()
  t.equal(v.bytes, 0)
  t.equal(v.digest, undefined, 'no digest until flushed')
  const during: Array<string | undefined> = []
  const sink = new Writable({
    write(_c, _e, cb) {
      during.push(v.digest)
      cb()
    },
  })
  await pipeline(Readable.from(DATA), v, sink)
  t.same(during, [undefined, undefined, undefined])
  t.equal(v.digest, sha256(ALL))
  t.equal(v.bytes, 14)
})

t.test('an empty stream hashes to the empty digest', async (t) => {
  const v = hashVerifier({ expected: () => EMPTY })
  t.equal((await run([], v)).length, 0)
  t.equal(v.digest, EMPTY)
  t.equal(v.bytes, 0)
})

t.test('a mismatch fails with HASH_MISMATCH at the end', async (t) => {
  const wrong = 'f'.repeat(64)
  const v = hashVerifier({ expected: () => wrong })
  const out: Buffer[] = []
  let finished = false
  const sink = new Writable({
    write(c: Buffer, _e, cb) {
      out.push(c)
      cb()
    },
    final(cb) {
      finished = true
      cb()
    },
  })
  await t.rejects(pipeline(Readable.from(DATA), v, sink), {
    code: 'HASH_MISMATCH',
    message: new RegExp(`${sha256(ALL)}.*${wrong}`),
  })
  t.notOk(finished, 'the sink never sees a clean end')
  t.equal(v.digest, sha256(ALL), 'the digest is still reported')
  t.equal(Buffer.concat(out).length, ALL.length, 'bytes flowed; only the end is refused')
})

t.test('one wrong byte is a mismatch', async (t) => {
  const flipped = Buffer.from(ALL)
  flipped[3] ^= 0x20
  await t.rejects(run([flipped], hashVerifier({ expected: () => sha256(ALL) })), { code: 'HASH_MISMATCH' })
})

t.test('expected is read lazily, once, at the end', async (t) => {
  let want: string | null = null
  let calls = 0
  const v = hashVerifier({
    expected: () => {
      calls++
      return want
    },
  })
  const source = Readable.from(
    (async function* () {
      yield DATA[0]
      yield DATA[1]
      // Known only after the bytes, like a trailer's hash.
      want = sha256(ALL)
      yield DATA[2]
    })(),
  )
  await pipeline(source, v, new Writable({ write: (_c, _e, cb) => cb() }))
  t.equal(calls, 1)
  t.equal(v.digest, want)
})

t.test('no expectation (absent, null, undefined, empty) means no check', async (t) => {
  for (const [what, expected] of [
    ['absent', undefined],
    ['null', () => null],
    ['undefined', () => undefined],
    ['empty', () => ''],
  ] as const) {
    const v = hashVerifier(expected ? { expected } : {})
    t.ok((await run(DATA, v)).equals(ALL), what)
    t.equal(v.digest, sha256(ALL), `${what}: digest still computed`)
  }
  const bare = hashVerifier()
  t.ok((await run(DATA, bare)).equals(ALL), 'no options at all')
})

t.test('onBytes gets the running total after each chunk', async (t) => {
  const totals: number[] = []
  const v = hashVerifier({ onBytes: (n) => totals.push(n) })
  await run([Buffer.from('abc'), Buffer.from('defgh'), Buffer.from('i')], v)
  t.same(totals, [3, 8, 9])
  t.equal(v.bytes, 9)
})

t.test('property: any chunking gives the same digest, byte count and totals', async (t) => {
  const chunks = fc.array(
    fc.uint8Array({ minLength: 1, maxLength: 100 }).map((a) => Buffer.from(a)),
    { maxLength: 10 },
  )
  await t.resolves(
    fc.assert(
      fc.asyncProperty(chunks, async (input) => {
        const all = Buffer.concat(input)
        const totals: number[] = []
        const v = hashVerifier({ expected: () => sha256(all), onBytes: (n) => totals.push(n) })
        const out = await run(input, v)
        let sum = 0
        const want = input.map((c) => (sum += c.length))
        return out.equals(all) && v.digest === sha256(all) && v.bytes === all.length && JSON.stringify(totals) === JSON.stringify(want)
      }),
      { numRuns: 200 },
    ),
  )
})

t.test('seeded with a prefix, the digest covers prefix and stream; bytes counts the stream only', async (t) => {
  const prefix = Readable.from([Buffer.from('hel'), Buffer.from('lo ')])
  const v = hashVerifier({ expected: () => sha256(ALL), hash: await hashPrefix(prefix) })
  const rest = ALL.subarray(6)
  t.ok((await run([rest], v)).equals(rest), 'only the rest flows')
  t.same([v.digest, v.bytes], [sha256(ALL), rest.length])
  const wrong = hashVerifier({ expected: () => sha256(ALL), hash: await hashPrefix([Buffer.from('HELLO ')]) })
  await t.rejects(run([rest], wrong), { code: 'HASH_MISMATCH' }, 'a different prefix is a mismatch')
})
