import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { readdir } from 'node:fs/promises'
import { connect } from 'node:net'
import t from 'tap'
import { HOSTILE_HEADERS } from '../helpers/hostile-headers.js'
import { rawRequest, replyFields, startServer, waitForEntry } from '../helpers/server.js'

// The server spoken to as `nc -N` would: raw bytes in, raw bytes out, so these tests pin the wire format of
// PROTOCOL.md rather than our own client's reading of it.

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex')

async function hello(port: number): Promise<string> {
  const reply = replyFields((await rawRequest(port, ['op:hello\n'])).line)
  return reply.id_cliente!
}

function depositHeader(id: string, name: string, size: number | '*', hash: string, extra = ''): string {
  return `op:deposit|id_cliente:${id}|tamanho_arquivo:${size}|hash_arquivo:${hash}|nome_arquivo:${name}${extra}\n`
}

t.test('hello issues a UUID v4 and recognises it afterwards', async (t) => {
  const server = await startServer(t)
  const { port } = server.address
  const first = replyFields((await rawRequest(port, ['op:hello\n'])).line)
  t.equal(first.status, 'ok')
  t.equal(first.novo, '1')
  t.match(first.id_cliente, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
  const again = replyFields((await rawRequest(port, [`op:hello|id_cliente:${first.id_cliente}\n`])).line)
  t.same([again.status, again.novo], ['ok', '0'])
  const stranger = replyFields((await rawRequest(port, ['op:hello|id_cliente:4f9d7e0e-1a2b-4c3d-8e4f-5a6b7c8d9e0f\n'])).line)
  t.same([stranger.status, stranger.code], ['error', 'UNKNOWN_CLIENT'])
})

t.test('a deposit whose header and body share one write is stored byte for byte', async (t) => {
  const server = await startServer(t)
  const { port } = server.address
  const id = await hello(port)
  // A body that looks like protocol: newlines, a fake header, bytes that are not UTF-8.
  const body = Buffer.concat([Buffer.from('op:list\n|x:y\n'), Buffer.from([0xff, 0xfe, 0x00, 0x0a, 0x80])])
  const reply = await rawRequest(port, [Buffer.concat([Buffer.from(depositHeader(id, 'mixed.bin', body.length, sha(body))), body])])
  const ok = replyFields(reply.line)
  t.same([ok.status, ok.tamanho_arquivo, ok.hash_arquivo, ok.copias], ['ok', String(body.length), sha(body), '1'])
  const back = await rawRequest(port, [`op:retrieve|id_cliente:${id}|nome_arquivo:mixed.bin\n`])
  t.equal(replyFields(back.line).tamanho_arquivo, String(body.length))
  t.same(back.body, body, 'retrieve returns exactly the deposited bytes after the status line')
})

t.test('trailer and chunked framings, by hand', async (t) => {
  const server = await startServer(t)
  const { port } = server.address
  const id = await hello(port)
  const withTrailer = await rawRequest(port, [depositHeader(id, 't', 7, '*'), 'abcdefg', `hash_arquivo:${sha('abcdefg')}\n`])
  t.equal(replyFields(withTrailer.line).status, 'ok')
  const chunked = await rawRequest(port, [depositHeader(id, 'c', '*', '*'), '4\nabcd', '3\nefg', `0\ntamanho_arquivo:7|hash_arquivo:${sha('abcdefg')}\n`])
  t.same(replyFields(chunked.line).hash_arquivo, sha('abcdefg'))
  const list = await rawRequest(port, [`op:list|id_cliente:${id}\n`])
  t.equal(replyFields(list.line).quantidade, '2')
  t.same(list.body.toString().trim().split('\n').map((l) => replyFields(l).nome_arquivo), ['c', 't'])
})

t.test('a bad body is refused, leaves no temp file, and keeps the previous version', async (t) => {
  const server = await startServer(t)
  const { port } = server.address
  const id = await hello(port)
  t.equal(replyFields((await rawRequest(port, [depositHeader(id, 'doc', 2, sha('v1')), 'v1'])).line).status, 'ok')

  const cases: [string, (string | Buffer)[], string][] = [
    ['wrong hash', [depositHeader(id, 'doc', 2, sha('v2')), 'XX'], 'HASH_MISMATCH'],
    ['short body', [depositHeader(id, 'doc', 10, sha('v2')), 'v2'], 'BAD_BODY'],
    ['long body', [depositHeader(id, 'doc', 2, sha('v2')), 'v2 and more'], 'BAD_BODY'],
    ['bad chunk line', [depositHeader(id, 'doc', '*', '*'), 'zz\nv2'], 'BAD_BODY'],
    ['trailer hash wrong', [depositHeader(id, 'doc', 2, '*'), `v2hash_arquivo:${sha('nope')}\n`], 'HASH_MISMATCH'],
  ]
  for (const [what, chunks, code] of cases) {
    const reply = replyFields((await rawRequest(port, chunks)).line)
    t.same([reply.status, reply.code], ['error', code], what)
  }
  const back = await rawRequest(port, [`op:retrieve|id_cliente:${id}|nome_arquivo:doc\n`])
  t.equal(back.body.toString(), 'v1', 'the committed version survived every failed replacement')
  t.same(await readdir(server.store.layout.tmp), [], 'no temp file left behind')
})

t.test('malformed headers get one BAD_HEADER line', async (t) => {
  const server = await startServer(t, { maxHeaderBytes: 512 })
  const { port } = server.address
  for (const [what, chunks, code] of HOSTILE_HEADERS) {
    const { line, bytes } = await rawRequest(port, chunks)
    t.same([replyFields(line).status, replyFields(line).code], ['error', code], what)
    t.equal(bytes.toString().split('\n').length, 2, `${what}: exactly one line`)
  }
})

t.test('an over-long header is refused without waiting for its end', async (t) => {
  const server = await startServer(t, { maxHeaderBytes: 512 })
  // No newline and no half-close: the reply must come from the length cap alone.
  const reply = await rawRequest(server.address.port, ['op:hello|x:' + 'a'.repeat(600)], { halfClose: false })
  t.equal(replyFields(reply.line).code, 'BAD_HEADER')
  t.match(replyFields(reply.line).message, /longer than 512 bytes/)
})

t.test('refusals that depend on the header come before the body is sent', async (t) => {
  const server = await startServer(t)
  const { port } = server.address
  const id = await hello(port)
  const refusals: [string, string][] = [
    [depositHeader(id, 'x', 5, sha('hello'), '|qtd_replicas:2'), 'NO_REPLICAS'],
    [depositHeader('4f9d7e0e-1a2b-4c3d-8e4f-5a6b7c8d9e0f', 'x', 5, sha('hello')), 'UNKNOWN_CLIENT'],
    [depositHeader(id, 'x', Number.MAX_SAFE_INTEGER, sha('hello')), 'NO_SPACE'],
  ]
  for (const [header, code] of refusals) {
    const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true })
    await once(socket, 'connect')
    socket.write(header)
    // Only the header is out and the socket stays open: the reply can only be a refusal made on the header.
    const [data] = (await once(socket, 'data')) as [Buffer]
    t.equal(replyFields(data.toString().trim()).code, code)
    socket.destroy()
  }
  t.same(server.store.list(id), [], 'nothing was stored')
})

t.test('files are private to their id', async (t) => {
  const server = await startServer(t)
  const { port } = server.address
  const [alice, bob] = [await hello(port), await hello(port)]
  await rawRequest(port, [depositHeader(alice, 'secret', 1, sha('s')), 's'])
  const list = await rawRequest(port, [`op:list|id_cliente:${bob}\n`])
  t.equal(replyFields(list.line).quantidade, '0')
  for (const op of ['retrieve', 'delete']) {
    const reply = await rawRequest(port, [`op:${op}|id_cliente:${bob}|nome_arquivo:secret\n`])
    t.equal(replyFields(reply.line).code, 'NOT_FOUND', `bob cannot ${op} alice's file`)
  }
  t.equal(server.store.list(alice).length, 1)
})

t.test('delete removes the name and its bytes', async (t) => {
  const server = await startServer(t)
  const { port } = server.address
  const id = await hello(port)
  await rawRequest(port, [depositHeader(id, 'gone', 3, sha('abc')), 'abc'])
  const del = replyFields((await rawRequest(port, [`op:delete|id_cliente:${id}|nome_arquivo:gone\n`])).line)
  t.same([del.status, del.nome_arquivo], ['ok', 'gone'])
  t.same(await readdir(server.store.layout.blobs(id)), [])
  t.equal(replyFields((await rawRequest(port, [`op:retrieve|id_cliente:${id}|nome_arquivo:gone\n`])).line).code, 'NOT_FOUND')
})

t.test('a client that vanishes mid-body leaves nothing behind', async (t) => {
  const server = await startServer(t)
  const { port } = server.address
  const id = await hello(port)
  const socket = connect({ host: '127.0.0.1', port })
  await once(socket, 'connect')
  socket.write(depositHeader(id, 'half', 1 << 20, sha('whatever')))
  socket.write(Buffer.alloc(64 * 1024))
  // Wait until the server has a temp file open for this upload, then cut the connection hard.
  await waitForEntry(server.store.layout.tmp)
  t.equal((await readdir(server.store.layout.tmp)).length, 1, 'upload in progress')
  socket.resetAndDestroy()
  await server.close(0)
  t.same(await readdir(server.store.layout.tmp), [], 'temp file removed')
  t.equal(server.store.stat(id, 'half'), undefined)
})

t.test('many clients at once', async (t) => {
  const server = await startServer(t)
  const { port } = server.address
  const id = await hello(port)
  const bodies = Array.from({ length: 24 }, (_, i) => Buffer.alloc(100_000 + i, i))
  const replies = await Promise.all(bodies.map((b, i) => rawRequest(port, [depositHeader(id, `f${i}`, b.length, sha(b)), b])))
  t.same(replies.map((r) => replyFields(r.line).status), bodies.map(() => 'ok'))
  t.equal(server.store.list(id).length, bodies.length)
  const back = await Promise.all(bodies.map((_, i) => rawRequest(port, [`op:retrieve|id_cliente:${id}|nome_arquivo:f${i}\n`])))
  t.ok(back.every((r, i) => r.body.equals(bodies[i]!)), 'every file comes back intact')
})
