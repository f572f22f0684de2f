import t from 'tap'
import fc from 'fast-check'
import { createHash } from 'node:crypto'
import { Readable, Writable, type Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { BodyEncoder } from '../../lib/streams/body-encoder.js'
import { BodyDecoder } from '../../lib/streams/body-decoder.js'
import { hashVerifier } from '../../lib/streams/hash-verifier.js'
import { bytewise, cutAt } from '../helpers/chunks.js'

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex')

async function run(input: Buffer[], ...stages: Transform[]): Promise<Buffer> {
  const out: Buffer[] = []
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      out.push(chunk)
      cb()
    },
  })
  await pipeline([Readable.from(input), ...stages, sink])
  return Buffer.concat(out)
}

function encoderFor(data: Buffer, chunked: boolean): BodyEncoder {
  return new BodyEncoder({ chunked, trailer: () => ({ size: data.length, hash: sha256(data) }) })
}


t.test('chunked framing on the wire', async (t) => {
  const data = Buffer.from('abcdefghijklmnopq')
  const wire = await run([data.subarray(0, 3), data.subarray(3)], encoderFor(data, true))
  t.equal(wire.toString(), `3\nabce\ndefghijklmnopq0\ntamanho_arquivo:17|hash_arquivo:${sha256(data)}\n`)
})

t.test('empty writes never emit a premature 0-length chunk', async (t) => {
  const data = Buffer.from('ab')
  const wire = await run([Buffer.alloc(0), data, Buffer.alloc(0)], encoderFor(data, true))
  t.equal(wire.toString(), `2\nab0\ntamanho_arquivo:2|hash_arquivo:${sha256(data)}\n`)
  const empty = await run([], encoderFor(Buffer.alloc(0), true))
  t.equal(empty.toString(), `0\ntamanho_arquivo:0|hash_arquivo:${sha256(Buffer.alloc(0))}\n`, 'empty file')
})

t.test('fixed framing: raw bytes, then the trailer', async (t) => {
  const data = Buffer.from([0x00, 0x0a, 0xff, 0x30, 0x0a])
  const wire = await run([data], encoderFor(data, false))
  t.ok(wire.subarray(0, 5).equals(data))
  t.equal(wire.subarray(5).toString(), `tamanho_arquivo:5|hash_arquivo:${sha256(data)}\n`)
})

t.test('the trailer is read once, after the last byte', async (t) => {
  const seen: number[] = []
  let written = 0
  const encoder = new BodyEncoder({
    chunked: true,
    trailer: () => {
      seen.push(written)
      return { size: written, hash: 'a'.repeat(64) }
    },
  })
  const counter = hashVerifier({ onBytes: (n) => (written = n) })
  await run([Buffer.from('xx'), Buffer.from('yyy')], counter, encoder)
  t.same(seen, [5])
})

t.test('a trailer callback that throws fails the stream', async (t) => {
  const boom = new Error('no hash yet')
  const encoder = new BodyEncoder({
    chunked: false,
    trailer: () => {
      throw boom
    },
  })
  await t.rejects(run([Buffer.from('x')], encoder), boom)
})

const chunksArb = fc.array(
  fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)),
  { maxLength: 12 },
)

for (const chunked of [true, false]) {
  const mode = chunked ? 'chunked' : 'fixed'
  const decoderFor = (data: Buffer) => new BodyDecoder({ size: chunked ? null : data.length, trailer: true })

  t.test(`property (${mode}): encoder -> arbitrary cuts -> decoder gives back the bytes and trailer`, async (t) => {
    await t.resolves(
      fc.assert(
        fc.asyncProperty(chunksArb, fc.array(fc.nat(), { maxLength: 16 }), async (chunks, points) => {
          const data = Buffer.concat(chunks)
          const wire = await run(chunks, encoderFor(data, chunked))
          const decoder = decoderFor(data)
          const back = await run(cutAt(wire, points), decoder)
          return back.equals(data) && decoder.result.size === data.length && decoder.result.hash === sha256(data)
        }),
        { numRuns: 200 },
      ),
    )
  })

  t.test(`property (${mode}): one byte per write`, async (t) => {
    await t.resolves(
      fc.assert(
        fc.asyncProperty(fc.array(fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)), { maxLength: 4 }), async (chunks) => {
          const data = Buffer.concat(chunks)
          const wire = await run(chunks, encoderFor(data, chunked))
          const decoder = decoderFor(data)
          const back = await run(bytewise(wire), decoder)
          return back.equals(data) && decoder.result.size === data.length && decoder.result.hash === sha256(data)
        }),
        { numRuns: 40 },
      ),
    )
  })

  t.test(`${mode}: the client and server stages compose (hasher -> encoder | decoder -> verifier)`, async (t) => {
    const data = Buffer.concat([Buffer.from('head\n'), Buffer.alloc(70_000, 0xab), Buffer.from([0xc3, 0x28, 0x0a])])
    const hasher = hashVerifier()
    const encoder = new BodyEncoder({ chunked, trailer: () => ({ size: hasher.bytes, hash: hasher.digest! }) })
    const wire = await run(cutAt(data, [1, 4096, 65_536]), hasher, encoder)
    t.equal(hasher.digest, sha256(data))

    const decoder = decoderFor(data)
    const verifier = hashVerifier({ expected: () => decoder.result.hash })
    const back = await run(cutAt(wire, [3, 5, 6, 7, 70_000, wire.length - 2]), decoder, verifier)
    t.ok(back.equals(data))
    t.equal(verifier.digest, sha256(data))

    const tampered = Buffer.from(wire)
    tampered[wire.length >> 1] ^= 1
    const d2 = decoderFor(data)
    await t.rejects(run([tampered], d2, hashVerifier({ expected: () => d2.result.hash })), { code: 'HASH_MISMATCH' }, 'a flipped bit is caught')
  })
}
