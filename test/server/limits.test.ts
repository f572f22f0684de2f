import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { readdir } from 'node:fs/promises'
import { connect, type Socket } from 'node:net'
import t from 'tap'
import { rawRequest, replyFields, startServer, waitForEntry } from '../helpers/server.js'

// The server's limits and its stop: each refusal is one clear line, and a stop never leaves half a file.

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex')

async function open(port: number): Promise<Socket> {
  const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true })
  socket.on('error', () => {})
  socket.on('end', () => socket.end())
  await once(socket, 'connect')
  return socket
}

async function firstLine(socket: Socket): Promise<Record<string, string>> {
  const data = await new Promise<Buffer>((resolve, reject) => {
    socket.once('data', resolve)
    socket.once('close', () => reject(new Error('closed without a reply')))
  })
  return replyFields(data.toString().split('\n')[0]!)
}

t.test('connections over the limit are refused with BUSY', async (t) => {
  const server = await startServer(t, { maxConnections: 1 })
  const { port } = server.address
  const holder = await open(port)
  t.teardown(() => holder.destroy())
  // A connection holds a slot once it has begun its request (before its first byte it is the listener's), which
  // the server sees a moment after we wrote it: hello until refused, boundedly.
  holder.write('op:')
  let refusal: Record<string, string> = {}
  for (let i = 0; i < 50 && refusal.code !== 'BUSY'; i++) refusal = replyFields((await rawRequest(port, ['op:hello\n'])).line)
  t.same([refusal.status, refusal.code], ['error', 'BUSY'])
  holder.destroy()
  await once(holder, 'close')
  // The slot frees once the holder's close has been seen; hello retries until then, boundedly.
  let status = ''
  for (let i = 0; i < 50 && status !== 'ok'; i++) status = replyFields((await rawRequest(port, ['op:hello\n'])).line).status!
  t.equal(status, 'ok', 'served again once the slot is free')
})

t.test('a silent connection is told TIMEOUT', async (t) => {
  const server = await startServer(t, { idleTimeoutMs: 150, lingerMs: 100 })
  const socket = await open(server.address.port)
  const reply = await firstLine(socket)
  t.same([reply.status, reply.code], ['error', 'TIMEOUT'])
  socket.destroy()
})

t.test('a deposit that stalls mid-body times out and leaves nothing', async (t) => {
  const server = await startServer(t, { idleTimeoutMs: 150, lingerMs: 100 })
  const { port } = server.address
  const id = replyFields((await rawRequest(port, ['op:hello\n'])).line).id_cliente!
  const socket = await open(port)
  socket.write(`op:deposit|id_cliente:${id}|tamanho_arquivo:1000|hash_arquivo:${sha('x')}|nome_arquivo:stall\n`)
  socket.write(Buffer.alloc(100))
  const reply = await firstLine(socket)
  t.equal(reply.code, 'TIMEOUT')
  socket.destroy()
  await server.close(0)
  t.same(await readdir(server.store.layout.tmp), [])
  t.equal(server.store.stat(id, 'stall'), undefined)
})

t.test('stopping lets an in-flight deposit finish and refuses new connections', async (t) => {
  const server = await startServer(t, { shutdownGraceMs: 30_000 })
  const { port } = server.address
  const id = replyFields((await rawRequest(port, ['op:hello\n'])).line).id_cliente!
  const body = Buffer.alloc(200_000, 7)
  const socket = await open(port)
  socket.write(`op:deposit|id_cliente:${id}|tamanho_arquivo:${body.length}|hash_arquivo:${sha(body)}|nome_arquivo:late\n`)
  socket.write(body.subarray(0, 1000))
  // Only stop once the server has this upload in hand (its temp file exists).
  await waitForEntry(server.store.layout.tmp)
  const idle = await open(port)
  const idleReply = firstLine(idle)
  const idleClosed = once(idle, 'close')
  const stopped = server.close()
  t.equal((await idleReply).code, 'SHUTTING_DOWN', 'an idle connection is told why it is closed')
  await idleClosed
  const refused = await rawRequest(port, ['op:hello\n']).catch((err: NodeJS.ErrnoException) => err.code)
  t.equal(refused, 'ECONNREFUSED', 'no new connections once stopping')
  socket.end(body.subarray(1000))
  const reply = await firstLine(socket)
  t.same([reply.status, reply.nome_arquivo], ['ok', 'late'])
  socket.destroy()
  await stopped
  t.equal(server.store.stat(id, 'late')?.size, body.length, 'committed before the node stopped')
})

t.test('stopping with no grace cuts an in-flight deposit and leaves no trace', async (t) => {
  const server = await startServer(t)
  const { port } = server.address
  const id = replyFields((await rawRequest(port, ['op:hello\n'])).line).id_cliente!
  const socket = await open(port)
  socket.write(`op:deposit|id_cliente:${id}|tamanho_arquivo:100000|hash_arquivo:${sha('x')}|nome_arquivo:cut\n`)
  socket.write(Buffer.alloc(1000))
  await waitForEntry(server.store.layout.tmp)
  const closed = once(socket, 'close')
  await server.close(0)
  await closed
  t.same(await readdir(server.store.layout.tmp), [])
  t.equal(server.store.stat(id, 'cut'), undefined)
})

t.test('a commit slower than the idle timeout is not reported as TIMEOUT', async (t) => {
  const server = await startServer(t, { idleTimeoutMs: 100, lingerMs: 100 })
  const { port } = server.address
  const id = replyFields((await rawRequest(port, ['op:hello\n'])).line).id_cliente!
  // Stand in for a long fsync: hold the commit for several idle periods. Waiting on time is the point here.
  const commit = server.store.commitUpload.bind(server.store)
  server.store.commitUpload = async (...args) => {
    await new Promise((resolve) => setTimeout(resolve, 400))
    return commit(...args)
  }
  const reply = await rawRequest(port, [`op:deposit|id_cliente:${id}|tamanho_arquivo:3|hash_arquivo:${sha('abc')}|nome_arquivo:slow\n`, 'abc'])
  t.same([replyFields(reply.line).status, replyFields(reply.line).nome_arquivo], ['ok', 'slow'])
})

t.test('a header dribbled a byte at a time is cut at the idle timeout', async (t) => {
  const server = await startServer(t, { idleTimeoutMs: 200, lingerMs: 100 })
  const socket = await open(server.address.port)
  const reply = firstLine(socket)
  // A byte every 50 ms keeps the per-byte idle timer alive; only the header deadline can end this.
  const drip = setInterval(() => socket.write('a'), 50)
  t.teardown(() => clearInterval(drip))
  t.equal((await reply).code, 'TIMEOUT')
  clearInterval(drip)
  socket.destroy()
})
