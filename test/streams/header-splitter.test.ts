import t from 'tap'
import fc from 'fast-check'
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { HeaderSplitter, type HeaderSplitterOptions } from '../../lib/streams/header-splitter.js'
import { bytewise, cutAt } from '../helpers/chunks.js'

interface Outcome {
  header: string
  body: Buffer
  chunks: Buffer[]
}

/** Feeds `chunks` through a fresh splitter; rejects with the pipeline's error, `chunks` collected either way. */
async function split(input: Buffer[], options: HeaderSplitterOptions = { maxBytes: 4096 }, out: Buffer[] = []): Promise<Outcome> {
  const splitter = new HeaderSplitter(options)
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      out.push(chunk)
      cb()
    },
  })
  await pipeline(Readable.from(input), splitter, sink)
  return { header: await splitter.header, body: Buffer.concat(out), chunks: out }
}


const HEADER = 'op:deposit|nome_arquivo:ação 😀.txt|tamanho_arquivo:*'
// A body with newlines, CR, NUL, a fake header line and bytes that are not UTF-8 (lone continuation, truncated lead).
const BODY = Buffer.concat([
  Buffer.from('\nline two\r\nop:hello\n'),
  Buffer.from([0x00, 0xff, 0xfe, 0x80, 0xc3, 0x0a, 0xed, 0xa0, 0x80, 0x0a]),
  Buffer.from('tail'),
])
const WIRE = Buffer.concat([Buffer.from(HEADER + '\n'), BODY])

t.test('one chunk', async (t) => {
  const { header, body } = await split([WIRE])
  t.equal(header, HEADER)
  t.ok(body.equals(BODY), 'body bytes untouched')
})

t.test('byte by byte', async (t) => {
  const { header, body } = await split(bytewise(WIRE))
  t.equal(header, HEADER)
  t.ok(body.equals(BODY))
})

t.test('split in two at every position', async (t) => {
  for (let i = 0; i <= WIRE.length; i++) {
    const { header, body } = await split([WIRE.subarray(0, i), WIRE.subarray(i)])
    t.equal(header, HEADER, `header, cut at ${i}`)
    t.ok(body.equals(BODY), `body, cut at ${i}`)
  }
})

t.test('property: arbitrary header text, body bytes and cut points', async (t) => {
  const headerArb = fc.string({ unit: 'binary', maxLength: 60 }).filter((s) => !s.includes('\n'))
  const bodyArb = fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a))
  await t.resolves(
    fc.assert(
      fc.asyncProperty(headerArb, bodyArb, fc.array(fc.nat(), { maxLength: 12 }), async (head, body, points) => {
        const wire = Buffer.concat([Buffer.from(head + '\n'), body])
        const got = await split(cutAt(wire, points))
        return got.header === head && got.body.equals(body)
      }),
      { numRuns: 300 },
    ),
  )
})

t.test('later chunks pass as is; the first tail is a zero-copy view', async (t) => {
  const first = Buffer.from('op:list\nabc')
  const second = Buffer.from('def')
  const { chunks } = await split([first, second])
  t.equal(chunks.length, 2)
  t.equal(chunks[0].buffer, first.buffer, 'tail shares memory with the input chunk')
  t.equal(chunks[0].toString(), 'abc')
  t.equal(chunks[1], second, 'a chunk after the header is the same Buffer')
})

t.test('a header without a body pushes nothing', async (t) => {
  const { header, chunks } = await split([Buffer.from('op:list\n')])
  t.equal(header, 'op:list')
  t.equal(chunks.length, 0)
  t.equal((await split([Buffer.from('\n')])).header, '', 'an empty line is a line')
})

t.test('a CRLF line keeps its \\r for decodeFields to forgive', async (t) => {
  const { header, body } = await split([Buffer.from('op:list\r\nx')])
  t.equal(header, 'op:list\r')
  t.equal(body.toString(), 'x')
})

t.test('maxBytes: exactly at the cap passes, one over fails with nothing pushed', async (t) => {
  const line = 'k:' + 'x'.repeat(18)
  t.equal((await split([Buffer.from(line + '\nbody')], { maxBytes: 20 })).header, line)
  t.equal((await split(bytewise(Buffer.from(line + '\nbody')), { maxBytes: 20 })).header, line, 'byte by byte')

  const long = Buffer.from(line + 'y\nbody')
  const inputs: Array<[string, Buffer[]]> = [
    ['one chunk, newline present', [long]],
    ['byte by byte', bytewise(long)],
    ['no newline ever', [Buffer.from('k:' + 'x'.repeat(100))]],
    ['over the cap before the newline arrives', [long.subarray(0, 21), long.subarray(21)]],
  ]
  for (const [what, input] of inputs) {
    const out: Buffer[] = []
    const splitter = new HeaderSplitter({ maxBytes: 20 })
    const sink = new Writable({ write: (c: Buffer, _e, cb) => (out.push(c), cb()) })
    await t.rejects(pipeline(Readable.from(input), splitter, sink), { code: 'BAD_HEADER', message: /longer than 20/ }, what)
    await t.rejects(splitter.header, { code: 'BAD_HEADER' }, `${what}: header rejects too`)
    t.equal(out.length, 0, `${what}: nothing downstream`)
  }
})

t.test('invalid UTF-8 in the line is BAD_HEADER', async (t) => {
  const bad = [
    [0xff],
    [0xc3], // truncated two-byte sequence
    [0xc0, 0xaf], // overlong '/'
    [0xed, 0xa0, 0x80], // UTF-16 surrogate
    [0xf4, 0x90, 0x80, 0x80], // above U+10FFFF
  ]
  for (const bytes of bad) {
    const wire = Buffer.concat([Buffer.from('op:'), Buffer.from(bytes), Buffer.from('\nbody')])
    const out: Buffer[] = []
    await t.rejects(split([wire], { maxBytes: 100 }, out), { code: 'BAD_HEADER', message: /UTF-8/ }, Buffer.from(bytes).toString('hex'))
    await t.rejects(split(bytewise(wire), { maxBytes: 100 }), { code: 'BAD_HEADER' }, 'byte by byte')
    t.equal(out.length, 0)
  }
})

t.test('end of input: nothing at all vs part of a line', async (t) => {
  await t.rejects(split([]), { code: 'CONNECTION_LOST' })
  await t.rejects(split([Buffer.alloc(0)]), { code: 'CONNECTION_LOST' }, 'an empty chunk is still nothing')
  await t.rejects(split([Buffer.from('op:li')]), { code: 'BAD_HEADER', message: /not ended by a newline/ })

  const splitter = new HeaderSplitter({ maxBytes: 10 })
  await t.rejects(pipeline(Readable.from([]), splitter, new Writable({ write: (_c, _e, cb) => cb() })), { code: 'CONNECTION_LOST' })
  await t.rejects(splitter.header, { code: 'CONNECTION_LOST' }, 'the header promise says the same')
})

t.test("errorCode: 'PROTOCOL_ERROR' replaces BAD_HEADER, not CONNECTION_LOST", async (t) => {
  const options = { maxBytes: 8, errorCode: 'PROTOCOL_ERROR' as const }
  await t.rejects(split([Buffer.from('status:ok|x\n')], options), { code: 'PROTOCOL_ERROR' }, 'too long')
  await t.rejects(split([Buffer.from([0x61, 0xff, 0x0a])], options), { code: 'PROTOCOL_ERROR' }, 'not UTF-8')
  await t.rejects(split([Buffer.from('status')], options), { code: 'PROTOCOL_ERROR' }, 'unterminated')
  await t.rejects(split([], options), { code: 'CONNECTION_LOST' }, 'nothing at all')
  t.equal((await split([Buffer.from('status:k\n')], options)).header, 'status:k')
})

t.test('destroy settles the header promise', async (t) => {
  const quiet = new HeaderSplitter({ maxBytes: 10 })
  quiet.destroy()
  await t.rejects(quiet.header, { code: 'CONNECTION_LOST', message: /closed before a header/ })

  const reason = new Error('socket reset')
  const failed = new HeaderSplitter({ maxBytes: 10 })
  failed.on('error', () => {})
  failed.write(Buffer.from('op:'))
  failed.destroy(reason)
  await t.rejects(failed.header, reason, 'the destroy reason is the rejection')

  const done = new HeaderSplitter({ maxBytes: 10 })
  done.on('data', () => {})
  done.write(Buffer.from('op:list\nab'))
  t.equal(await done.header, 'op:list')
  done.destroy(new Error('later'))
  done.on('error', () => {})
  t.equal(await done.header, 'op:list', 'a found header stays found')
})
