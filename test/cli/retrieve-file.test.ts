import { randomBytes } from 'node:crypto'
import { readFile, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { DepositoClient } from '../../lib/client/client.js'
import { partialPath, retrieveToFile, retrieveToStream } from '../../lib/cli/retrieve-file.js'
import { cuttingProxy } from '../helpers/cutting-proxy.js'
import { resumableNode } from '../helpers/resumable-node.js'
import { Collector } from '../helpers/output.js'

const ID = '9d9d9d9d-9999-4999-8999-999999999999'
const IN_FLIGHT = 256 * 1024
const isRetrieve = (h: string) => h.startsWith('op:retrieve|')

async function setup(t: Test, cuts: number[], legacy = false) {
  const dir = t.testdir({})
  const node = await resumableNode(t, { legacy })
  const bytes = randomBytes(600 * 1024)
  node.files.set('f', bytes)
  const proxy = await cuttingProxy(t, { target: node.port, cuts, direction: 'down', cutWhen: isRetrieve })
  const client = new DepositoClient({ server: { host: '127.0.0.1', port: proxy.port }, id: ID })
  const sleeps: number[] = []
  const policy = (retries: number) => ({ retries, sleep: async (ms: number) => void sleeps.push(ms) })
  return { dir, node, bytes, proxy, client, policy, sleeps, path: join(dir, 'out.bin') }
}

t.test('a retrieval cut twice resumes from the partial\'s length each time', async (t) => {
  const { node, bytes, proxy, client, policy, path, dir } = await setup(t, [100_000, 300_000])
  const froms: number[] = []
  let floor = 0
  let below = 0
  const info = await retrieveToFile(client, 'f', path, (n) => void (n < floor && below++), policy(5), (from) => {
    froms.push(from)
    floor = from
  })
  t.equal(info.size, bytes.length)
  t.ok((await readFile(path)).equals(bytes), 'the whole file, byte for byte')
  t.same(await readdir(dir), ['out.bin'], 'the partial was renamed into place')
  t.equal(froms.length, 2)
  t.ok(froms[0]! > 0 && froms[1]! > froms[0]!, `resumed from the partial's length (${froms})`)
  const asked = node.headers.filter(isRetrieve)
  t.match(asked[1]!, `offset:${froms[0]}`)
  t.match(asked[2]!, `offset:${froms[1]}`)
  // What reached us but not the disk before a cut is fetched again: at most a few buffers per cut.
  t.ok(proxy.forwarded <= bytes.length + 3 * 300 + 2 * IN_FLIGHT, `bytes down in all (${proxy.forwarded}) within the size plus in-flight data per cut`)
  t.equal(below, 0, 'progress carried on from the resumed offset, never below it')
})

t.test('a cut that outlasts the retries keeps the partial; the next run resumes it', async (t) => {
  const { node, bytes, client, policy, path } = await setup(t, [200_000])
  await t.rejects(retrieveToFile(client, 'f', path, () => {}, policy(0), () => {}), { code: 'CONNECTION_LOST' })
  // Bytes still buffered when the cut came are lost: on a loaded box the partial may even be empty.
  const held = (await readFile(partialPath(path))).length
  t.ok(held <= 200_000, 'the partial is kept, holding no more than came down')
  await retrieveToFile(client, 'f', path, () => {}, policy(0), () => {})
  t.ok((await readFile(path)).equals(bytes))
  const rerun = node.headers.filter(isRetrieve)[1]!
  if (held > 0) t.match(rerun, `offset:${held}`, 'the re-run asked from its length')
  else t.notMatch(rerun, /offset:/, 'nothing held: the re-run asks from 0')
})

t.test('a server that ignores the offset: the partial starts over, and the file is right', async (t) => {
  const { bytes, client, policy, path } = await setup(t, [200_000], true)
  const froms: number[] = []
  await retrieveToFile(client, 'f', path, () => {}, policy(2), (from) => froms.push(from))
  t.ok((await readFile(path)).equals(bytes))
  t.equal(froms.length, 1)
})

t.test('a partial left by an earlier run, and a server that ignores the offset: truncated, then written whole', async (t) => {
  const { node, bytes, client, policy, path } = await setup(t, [], true)
  await writeFile(partialPath(path), bytes.subarray(0, 1000))
  await retrieveToFile(client, 'f', path, () => {}, policy(0), () => {})
  t.ok((await readFile(path)).equals(bytes), 'not the prefix twice')
  t.match(node.headers.filter(isRetrieve)[0]!, 'offset:1000', 'it asked from the partial\'s length')
})

t.test('a partial that does not belong (wrong bytes) fails the hash and is deleted', async (t) => {
  const { client, policy, path } = await setup(t, [])
  await writeFile(partialPath(path), randomBytes(1000))
  await t.rejects(retrieveToFile(client, 'f', path, () => {}, policy(2), () => {}), { code: 'HASH_MISMATCH' })
  await t.rejects(readFile(partialPath(path)), { code: 'ENOENT' }, 'the partial is gone: the next run starts over')
})

t.test('a partial longer than the file is refused and deleted', async (t) => {
  const { bytes, client, policy, path } = await setup(t, [])
  await writeFile(partialPath(path), Buffer.concat([bytes, Buffer.from('more')]))
  await t.rejects(retrieveToFile(client, 'f', path, () => {}, policy(2), () => {}), { code: 'BAD_HEADER' })
  await t.rejects(readFile(partialPath(path)), { code: 'ENOENT' })
})

for (const legacy of [false, true]) {
  t.test(`-o - is retried from the bytes already written (${legacy ? 'a server that ignores offsets' : 'offset honoured'})`, async (t) => {
    const { node, bytes, client, policy } = await setup(t, [150_000, 150_000], legacy)
    const out = new Collector()
    const chunks: Buffer[] = []
    out.on('pipe', () => {})
    const sink = Object.assign(out, { write: ((c: Buffer, cb: (e?: Error | null) => void) => (chunks.push(Buffer.from(c)), cb(), true)) as never })
    const froms: number[] = []
    await retrieveToStream(client, 'f', sink as unknown as NodeJS.WritableStream, () => {}, policy(3), (from) => froms.push(from))
    t.ok(Buffer.concat(chunks).equals(bytes), 'stdout got every byte once, in order')
    t.equal(froms.length, 2)
    if (!legacy) t.match(node.headers.filter(isRetrieve)[1]!, `offset:${froms[0]}`)
  })
}
