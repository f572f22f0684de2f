import t from 'tap'
import { createHash } from 'node:crypto'
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { BodyDecoder, type BodyFraming, type BodyResult } from '../../lib/streams/body-decoder.js'

const H = 'c0ffee'.repeat(10) + 'abcd'
const trailer = (size: number | string, hash = H) => `tamanho_arquivo:${size}|hash_arquivo:${hash}\n`

async function decode(framing: BodyFraming, input: Array<Buffer | string>, out: Buffer[] = []): Promise<{ bytes: Buffer; result: BodyResult; chunks: Buffer[] }> {
  const decoder = new BodyDecoder(framing)
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      out.push(chunk)
      cb()
    },
  })
  await pipeline(Readable.from(input.map((c) => (typeof c === 'string' ? Buffer.from(c) : c))), decoder, sink)
  return { bytes: Buffer.concat(out), result: decoder.result, chunks: out }
}
const bytewise = (s: string | Buffer) => [...Buffer.from(s)].map((b) => Buffer.from([b]))

t.test('fixed length, no trailer', async (t) => {
  const { bytes, result } = await decode({ size: 5, trailer: false }, ['he', 'llo'])
  t.equal(bytes.toString(), 'hello')
  t.same(result, { size: 5, hash: null })
  t.same((await decode({ size: 0, trailer: false }, [])).result, { size: 0, hash: null }, 'empty file')
  const nl = await decode({ size: 4, trailer: false }, bytewise('a\n\nb'))
  t.equal(nl.bytes.toString(), 'a\n\nb', 'newlines inside a fixed body are data')
})

t.test('fixed length with a trailer', async (t) => {
  const { bytes, result } = await decode({ size: 3, trailer: true }, ['abc' + trailer(3, H.toUpperCase())])
  t.equal(bytes.toString(), 'abc')
  t.same(result, { size: 3, hash: H }, 'hash normalised to lowercase')
  t.same((await decode({ size: 0, trailer: true }, [trailer(0)])).result, { size: 0, hash: H }, 'empty file')
  t.same((await decode({ size: 2, trailer: true }, ['xy', `hash_arquivo:${H}\r\n`])).result, { size: 2, hash: H }, 'size optional, CRLF forgiven')
  t.same((await decode({ size: 2, trailer: true }, bytewise('xy' + trailer(2)))).result, { size: 2, hash: H }, 'byte by byte')
})

t.test('chunked', async (t) => {
  const wire = '3\nabc' + 'A\n0123456789' + '00f\r\n' + 'x'.repeat(15) + '0\n' + trailer(28)
  for (const [what, input] of [
    ['one write', [wire]],
    ['byte by byte', bytewise(wire)],
  ] as const) {
    const { bytes, result } = await decode({ size: null, trailer: false }, [...input])
    t.equal(bytes.toString(), 'abc0123456789' + 'x'.repeat(15), what)
    t.same(result, { size: 28, hash: H }, `${what}: trailer is always read when chunked`)
  }
  t.same((await decode({ size: null, trailer: true }, ['0\n' + trailer(0)])).result, { size: 0, hash: H }, 'empty')
  const crlf = await decode({ size: null, trailer: true }, ['1\r\n\n0\r\n' + trailer(1).replace('\n', '\r\n')])
  t.equal(crlf.bytes.toString(), '\n', 'a chunk holding a newline')
})

t.test('file bytes are views of the input, not copies', async (t) => {
  const input = Buffer.from('2\nab0\n' + trailer(2))
  const { chunks } = await decode({ size: null, trailer: true }, [input])
  t.equal(chunks.length, 1)
  t.equal(chunks[0].buffer, input.buffer)
  const fixed = Buffer.from('wxyz')
  t.equal((await decode({ size: 4, trailer: false }, [fixed])).chunks[0].buffer, fixed.buffer)
})

const BAD: Array<[string, BodyFraming, string[], RegExp]> = [
  ['short fixed body', { size: 5, trailer: false }, ['abcd'], /ended after 4 of 5 bytes/],
  ['fixed body, nothing sent', { size: 1, trailer: true }, [], /ended after 0 of 1/],
  ['extra byte after fixed body', { size: 3, trailer: false }, ['abcd'], /more bytes than/],
  ['extra byte after an empty fixed body', { size: 0, trailer: false }, ['x'], /more bytes than/],
  ['extra bytes after a fixed trailer', { size: 1, trailer: true }, ['a' + trailer(1) + 'zz'], /more bytes than/],
  ['extra bytes after a chunked trailer', { size: null, trailer: true }, ['0\n' + trailer(0) + '\n'], /more bytes than/],
  ['chunk length not hex', { size: null, trailer: true }, ['xyz\nabc'], /bad chunk length/],
  ['empty chunk length line', { size: null, trailer: true }, ['\nabc'], /bad chunk length/],
  ['negative chunk length', { size: null, trailer: true }, ['-1\n'], /bad chunk length/],
  ['chunk length with space', { size: null, trailer: true }, [' 3\nabc'], /bad chunk length/],
  ['chunk length of 14 hex digits', { size: null, trailer: true }, ['1'.repeat(14) + '\n'], /bad chunk length/],
  ['chunk length line over 16 bytes', { size: null, trailer: true }, ['0'.repeat(17) + '\n'], /chunk length line too long/],
  ['endless chunk length line', { size: null, trailer: true }, ['1'.repeat(40)], /chunk length line too long/],
  ['ends inside a chunk', { size: null, trailer: true }, ['5\nab'], /0-length terminator/],
  ['ends after a chunk', { size: null, trailer: true }, ['2\nab'], /0-length terminator/],
  ['ends inside a chunk length line', { size: null, trailer: true }, ['2\nab1'], /0-length terminator/],
  ['nothing at all when chunked', { size: null, trailer: true }, [], /0-length terminator/],
  ['ends before the trailer', { size: null, trailer: true }, ['0\n'], /before its trailer/],
  ['trailer without newline', { size: null, trailer: true }, ['0\n' + trailer(0).trimEnd()], /before its trailer/],
  ['trailer size mismatch (chunked)', { size: null, trailer: true }, ['2\nab0\n' + trailer(3)], /trailer says 3 bytes but the body had 2/],
  ['trailer size mismatch (fixed)', { size: 2, trailer: true }, ['ab' + trailer(1)], /trailer says 1/],
  ['chunked trailer without size', { size: null, trailer: true }, [`0\nhash_arquivo:${H}\n`], /misses tamanho_arquivo/],
  ['trailer without hash', { size: null, trailer: true }, ['0\ntamanho_arquivo:0\n'], /misses hash_arquivo/],
  ['fixed trailer without hash', { size: 1, trailer: true }, ['atamanho_arquivo:1\n'], /misses hash_arquivo/],
  ['trailer not a field line', { size: null, trailer: true }, ['0\nnot a trailer\n'], /bad trailer/],
  ['empty trailer line', { size: 0, trailer: true }, ['\n'], /bad trailer/],
  ['trailer too long', { size: null, trailer: true, maxTrailerBytes: 40 }, ['0\n' + trailer(0)], /trailer line too long/],
  ['endless trailer (default cap)', { size: null, trailer: true }, ['0\n' + 'x'.repeat(1025)], /trailer line too long/],
]

t.test('malformed bodies are BAD_BODY', async (t) => {
  for (const [what, framing, input, message] of BAD) {
    await t.rejects(decode(framing, input), { code: 'BAD_BODY', message }, what)
    const joined = input.join('')
    if (joined.length > 0) await t.rejects(decode(framing, bytewise(joined)), { code: 'BAD_BODY', message }, `${what}, byte by byte`)
  }
})

t.test('a trailer of exactly maxTrailerBytes is accepted', async (t) => {
  const line = trailer(0)
  const { result } = await decode({ size: null, trailer: true, maxTrailerBytes: line.length - 1 }, ['0\n' + line])
  t.same(result, { size: 0, hash: H })
})

t.test(
  'malformed values inside the trailer are BAD_BODY too',
  async (t) => {
    await t.rejects(decode({ size: null, trailer: true }, ['0\ntamanho_arquivo:0|hash_arquivo:xyz\n']), { code: 'BAD_BODY' })
    await t.rejects(decode({ size: null, trailer: true }, ['0\n' + trailer('abc')]), { code: 'BAD_BODY' })
    await t.rejects(decode({ size: 1, trailer: true }, ['a' + trailer('01')]), { code: 'BAD_BODY' })
  },
)

t.test('backpressure: a slow consumer still gets every byte, and the source is held back', async (t) => {
  const CHUNK = 64 * 1024
  const COUNT = 48
  const data = Buffer.alloc(CHUNK * COUNT)
  for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 9)) & 0xff
  const total = data.length
  const hash = createHash('sha256').update(data).digest('hex')

  let produced = 0
  let consumed = 0
  let maxAhead = 0
  async function* source() {
    // Frames cut into 40000-byte writes, so chunk length lines and frame bodies straddle input chunks.
    const frames = [...Array(COUNT).keys()].map((i) => Buffer.concat([Buffer.from(`${CHUNK.toString(16)}\n`), data.subarray(i * CHUNK, (i + 1) * CHUNK)]))
    const wire = Buffer.concat([...frames, Buffer.from('0\n' + trailer(total, hash))])
    for (let off = 0; off < wire.length; off += 40000) {
      const piece = wire.subarray(off, off + 40000)
      produced += piece.length
      yield piece
    }
  }
  const received: Buffer[] = []
  const slow = new Writable({
    highWaterMark: 1024,
    write(chunk: Buffer, _enc, cb) {
      consumed += chunk.length
      maxAhead = Math.max(maxAhead, produced - consumed)
      received.push(chunk)
      setImmediate(cb)
    },
  })
  const decoder = new BodyDecoder({ size: null, trailer: true })
  await pipeline(Readable.from(source(), { objectMode: false }), decoder, slow)
  t.ok(Buffer.concat(received).equals(data), 'all bytes, in order')
  t.same(decoder.result, { size: total, hash })
  t.ok(received.length > total / 40000, `the sink took ${received.length} writes`)
  t.ok(maxAhead < total / 4, `the source ran at most ${maxAhead} bytes ahead of a ${total}-byte body`)
})

t.test('a resumed body (offset K): the trailer and the result count the whole file', async (t) => {
  const { bytes, result } = await decode({ size: 3, offset: 7, trailer: true }, ['abc' + trailer(10)])
  t.equal(bytes.toString(), 'abc', 'only the body flows')
  t.same(result, { size: 10, hash: H })
  await t.rejects(decode({ size: 3, offset: 7, trailer: true }, ['abc' + trailer(3)]), { code: 'BAD_BODY', message: /trailer says 3 bytes but the body had 10/ })
})
