import { createHash, randomBytes, randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { readFile } from 'node:fs/promises'
import { connect, type Socket } from 'node:net'
import { join } from 'node:path'
import { PassThrough, Readable } from 'node:stream'
import t, { type Test } from 'tap'
import { DepositoClient } from '../../lib/client/client.js'
import { IdentityFile } from '../../lib/client/identity.js'
import { startServer } from '../helpers/server.js'
import { listen } from '../helpers/fake-server.js'
import { fakeNode } from '../helpers/fake-node.js'

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex')
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/


async function client(t: Test, options: { identity?: IdentityFile; id?: string } = {}) {
  const server = await startServer(t)
  return new DepositoClient({ server: { host: '127.0.0.1', port: server.address.port }, ...options })
}

/** Everything written into a PassThrough, once it has ended. */
function collect(sink: PassThrough): Promise<Buffer> {
  const parts: Buffer[] = []
  sink.on('data', (d: Buffer) => parts.push(d))
  return once(sink, 'end').then(() => Buffer.concat(parts))
}

async function roundTrip(c: DepositoClient, name: string): Promise<Buffer> {
  const sink = new PassThrough()
  const bytes = collect(sink)
  await c.retrieve(name, sink)
  return bytes
}

t.test('id() asks the server once and saves the id per server', async (t) => {
  const root = t.testdir({ data: {} })
  const server = await startServer(t, { dataDir: join(root, 'data') })
  // A counting proxy: every connection a client opens passes through it.
  let connections = 0
  const proxy = await listen(t, (down) => {
    connections++
    const up = connect({ host: '127.0.0.1', port: server.address.port, allowHalfOpen: true })
    up.on('error', () => down.destroy())
    down.pipe(up)
    up.pipe(down)
  })
  const address = { host: '127.0.0.1', port: proxy.port }
  const identity = new IdentityFile(join(root, 'home'))

  const first = new DepositoClient({ server: address, identity })
  const id = await first.id()
  t.match(id, UUID)
  t.equal(connections, 2, 'the probe, then one hello')
  t.equal(await first.id(), id, 'asked again: remembered')
  t.equal(connections, 2)
  t.same(JSON.parse(await readFile(identity.path, 'utf8')), { [`cluster:${server.identity.id}`]: id }, 'saved under the cluster (the primary\'s node id), not the address')

  const second = new DepositoClient({ server: address, identity: new IdentityFile(identity.home) })
  t.equal(await second.id(), id, 'a second client with the same home reuses it')
  t.equal(connections, 3, '...after a probe, without a hello')
  t.equal(await second.hello(), id, 'and the server knows it')
  t.equal(connections, 5, 'hello: a probe and the hello')

  const other = randomUUID()
  const explicit = new DepositoClient({ server: address, identity, id: other })
  t.equal(await explicit.id(), other, 'an explicit id wins over the saved one')
  t.equal(connections, 5, 'and needs no probe')
  t.same(JSON.parse(await readFile(identity.path, 'utf8')), { [`cluster:${server.identity.id}`]: id }, 'and is not saved')
})

t.test('deposit with a known size, retrieve, onBytes', async (t) => {
  const c = await client(t)
  const data = randomBytes(300_000)
  const seen: number[] = []
  const done = await c.deposit(Readable.from([data.subarray(0, 100_000), data.subarray(100_000)]), {
    name: 'sized.bin',
    size: data.length,
    onBytes: (n) => seen.push(n),
  })
  t.match(done, { name: 'sized.bin', size: data.length, sha256: sha256(data), replicas: 0, copies: 1 })
  t.ok(Date.parse(done.storedAt) > 0, 'a date')
  t.equal(seen.at(-1), data.length, 'onBytes ends at the size')
  t.same(seen, [...seen].sort((x, y) => x - y), 'and never goes back')
  t.ok((await roundTrip(c, 'sized.bin')).equals(data), 'the same bytes come back')
})

t.test('deposit without a size (chunked), retrieve with onBytes', async (t) => {
  const c = await client(t)
  const parts = [randomBytes(70_000), Buffer.alloc(0), randomBytes(1), randomBytes(200_000)]
  const data = Buffer.concat(parts)
  let last = 0
  const done = await c.deposit(Readable.from(parts), { name: 'piped', onBytes: (n) => (last = n) })
  t.match(done, { name: 'piped', size: data.length, sha256: sha256(data) })
  t.equal(last, data.length)
  const sink = new PassThrough()
  const bytes = collect(sink)
  let got = 0
  const sizes = new Set<number>()
  const info = await c.retrieve('piped', sink, (n, i) => {
    got = n
    sizes.add(i.size)
  })
  t.match(info, { name: 'piped', size: data.length, sha256: sha256(data) })
  t.equal(got, data.length, 'retrieve onBytes ends at the size')
  t.same([...sizes], [data.length], 'and is told the size')
  t.ok((await bytes).equals(data))
})

t.test('empty files, sized and chunked', async (t) => {
  const c = await client(t)
  const empty = sha256(Buffer.alloc(0))
  t.match(await c.deposit(Readable.from([]), { name: 'e0', size: 0 }), { size: 0, sha256: empty })
  t.match(await c.deposit(Readable.from([]), { name: 'e1' }), { size: 0, sha256: empty })
  t.equal((await roundTrip(c, 'e1')).length, 0)
})

t.test('a deposit replaces an existing name', async (t) => {
  const c = await client(t)
  await c.deposit(Readable.from([Buffer.from('old')]), { name: 'n', size: 3 })
  await c.deposit(Readable.from([Buffer.from('newer')]), { name: 'n' })
  t.equal((await roundTrip(c, 'n')).toString(), 'newer')
  t.equal((await c.list()).length, 1)
})

t.test('list is sorted by name and describes each file', async (t) => {
  const c = await client(t)
  t.same(await c.list(), [], 'nothing yet')
  const names = ['zeta', 'alpha', 'Mid', 'beta', 'a|b:c%\nd']
  for (const name of names) await c.deposit(Readable.from([Buffer.from(name)]), { name })
  const files = await c.list()
  t.same(
    files.map((f) => f.name),
    [...names].sort(),
  )
  for (const f of files) t.match(f, { size: Buffer.byteLength(f.name), sha256: sha256(Buffer.from(f.name)), replicas: 0 })
})

t.test('delete, then retrieve is NOT_FOUND', async (t) => {
  const c = await client(t)
  const data = Buffer.from('to be deleted')
  await c.deposit(Readable.from([data]), { name: 'gone.txt', size: data.length })
  t.match(await c.delete('gone.txt'), { name: 'gone.txt', size: data.length, sha256: sha256(data) })
  await t.rejects(c.retrieve('gone.txt', new PassThrough()), { name: 'DepositoError', code: 'NOT_FOUND' })
  await t.rejects(c.delete('gone.txt'), { code: 'NOT_FOUND' })
  t.same(await c.list(), [])
})

t.test('files are private to their id', async (t) => {
  const server = await startServer(t)
  const address = { host: '127.0.0.1', port: server.address.port }
  const a = new DepositoClient({ server: address })
  const b = new DepositoClient({ server: address })
  await a.deposit(Readable.from([Buffer.from('mine')]), { name: 'secret' })
  await t.rejects(b.retrieve('secret', new PassThrough()), { code: 'NOT_FOUND' })
  t.same(await b.list(), [])
})

t.test('an id the server never issued is UNKNOWN_CLIENT', async (t) => {
  const c = await client(t, { id: randomUUID() })
  await t.rejects(c.hello(), { name: 'DepositoError', code: 'UNKNOWN_CLIENT' })
  await t.rejects(c.list(), { code: 'UNKNOWN_CLIENT' })
  await t.rejects(c.deposit(Readable.from([Buffer.from('x')]), { name: 'x', size: 1 }), { code: 'UNKNOWN_CLIENT' })
})

t.test('a source that fails mid-read is IO_ERROR, and nothing is stored', async (t) => {
  const c = await client(t)
  let reads = 0
  const source = new Readable({
    read() {
      if (reads++ === 0) this.push(randomBytes(1000))
      else this.destroy(new Error('disk on fire'))
    },
  })
  await t.rejects(c.deposit(source, { name: 'broken' }), { code: 'IO_ERROR', message: 'disk on fire' })
  t.same(await c.list(), [])
})

t.test('more replicas than the lone node has mirrors is NO_REPLICAS', async (t) => {
  const c = await client(t)
  const data = randomBytes(1000)
  await t.rejects(c.deposit(Readable.from([data]), { name: 'r', size: data.length, replicas: 1 }), { code: 'NO_REPLICAS' })
  t.same(await c.list(), [], 'nothing stored')
})

// Fake servers: each reads the request's header line, then misbehaves in one way.
const ID = '0c1f6c8e-3f1e-4d5b-9b5e-2f8a7c6d5e4f'
const fileFields = (size: number | string, hash: string, name = 'f') =>
  `nome_arquivo:${name}|tamanho_arquivo:${size}|hash_arquivo:${hash}|qtd_replicas:0|data:2024-01-01T00:00:00.000Z`

/** The fake answers the client's probe (`op:node`) as a primary, then misbehaves on the request itself. */
async function fake(t: Test, onHeader: (s: Socket, header: string) => void) {
  const node = await fakeNode(t, { node: 'papel:primario', reply: (header, s) => onHeader(s, header) })
  return { client: new DepositoClient({ server: { host: '127.0.0.1', port: node.port }, id: ID }), headers: node.headers }
}

/** `total` bytes made on demand, counting what the consumer pulled. */
function lazySource(total: number) {
  const counter = { pulled: 0 }
  const chunk = Buffer.alloc(64 * 1024, 7)
  function* generate() {
    for (let sent = 0; sent < total; sent += chunk.length) {
      counter.pulled += chunk.length
      yield chunk
    }
  }
  return { source: Readable.from(generate(), { objectMode: false }), counter }
}

t.test('retrieved bytes that do not match hash_arquivo: HASH_MISMATCH', async (t) => {
  const { client } = await fake(t, (s) => s.end(`status:ok|${fileFields(5, sha256(Buffer.from('hello')))}\njello`))
  await t.rejects(client.retrieve('f', new PassThrough()), { code: 'HASH_MISMATCH' })
})

t.test('a reply that announces 1000 bytes and closes after 10: CONNECTION_LOST', async (t) => {
  const { client } = await fake(t, (s) => s.end(`status:ok|${fileFields(1000, 'a'.repeat(64))}\n0123456789`))
  await t.rejects(client.retrieve('f', new PassThrough()), { code: 'CONNECTION_LOST', message: /10 of 1000/ })
})

t.test('a server that closes without replying: CONNECTION_LOST', async (t) => {
  const { client } = await fake(t, (s) => s.end())
  await t.rejects(client.list(), { code: 'CONNECTION_LOST' })
  await t.rejects(client.hello(), { code: 'CONNECTION_LOST' })
  const { client: reset } = await fake(t, (s) => s.destroy())
  await t.rejects(reset.retrieve('f', new PassThrough()), { code: 'CONNECTION_LOST' })
})

t.test('a server that hangs up mid-deposit: CONNECTION_LOST', async (t) => {
  const { client } = await fake(t, (s) => s.end())
  const { source } = lazySource(64 * 1024 * 1024)
  await t.rejects(client.deposit(source, { name: 'big' }), { code: 'CONNECTION_LOST' })
})

t.test('a garbage reply line: PROTOCOL_ERROR', async (t) => {
  for (const reply of ['HTTP/1.1 400 Bad Request\r\n', 'hello:world\n', 'status:maybe\n', Buffer.from([0xff, 0xfe, 0x0a])]) {
    const { client } = await fake(t, (s) => s.end(reply))
    await t.rejects(client.list(), { name: 'DepositoError', code: 'PROTOCOL_ERROR' }, JSON.stringify(reply.toString()))
  }
})

t.test('an early refusal stops the upload', async (t) => {
  const total = 512 * 1024 * 1024
  const { client, headers } = await fake(t, (s) => {
    s.end('status:error|code:NO_REPLICAS|message:x\n')
    s.resume()
  })
  const { source, counter } = lazySource(total)
  await t.rejects(client.deposit(source, { name: 'huge', size: total, replicas: 3 }), { code: 'NO_REPLICAS', message: 'x' })
  t.match(headers[1], `tamanho_arquivo:${total}`, 'after the probe, the deposit')
  t.ok(counter.pulled > 0, 'the upload had started')
  t.ok(counter.pulled < total / 16, `pulled ${counter.pulled} of ${total} bytes`)
})

t.test('a list that announces 3 files and sends 2: CONNECTION_LOST', async (t) => {
  const { client } = await fake(t, (s) => s.end(`status:ok|quantidade:3\n${fileFields(1, 'a'.repeat(64), 'a')}\n${fileFields(2, 'b'.repeat(64), 'b')}\n`))
  await t.rejects(client.list(), { code: 'CONNECTION_LOST', message: /announced 3 files and sent 2/ })
})

t.test('an error code the client does not know: INTERNAL with the message', async (t) => {
  const { client } = await fake(t, (s) => s.end('status:error|code:QUOTA_EXCEEDED|message:over%20quota\n'))
  await t.rejects(client.list(), { name: 'DepositoError', code: 'INTERNAL', message: 'over quota' })
})

t.test('unreadable file fields in a reply: PROTOCOL_ERROR', async (t) => {
  const { client } = await fake(t, (s) => s.end(`status:ok|${fileFields('xyz', 'a'.repeat(64))}\n`))
  await t.rejects(client.retrieve('f', new PassThrough()), { code: 'PROTOCOL_ERROR' })
})

t.test('more bytes than announced: PROTOCOL_ERROR', async (t) => {
  const { client } = await fake(t, (s) => s.end(`status:ok|${fileFields(2, sha256(Buffer.from('ab')))}\nabcdef`))
  await t.rejects(client.retrieve('f', new PassThrough()), { code: 'PROTOCOL_ERROR' })
})

t.test('an unreadable list line: PROTOCOL_ERROR', async (t) => {
  const { client } = await fake(t, (s) => s.end('status:ok|quantidade:1\nnonsense\n'))
  await t.rejects(client.list(), { name: 'DepositoError', code: 'PROTOCOL_ERROR' })
})
