import { randomUUID } from 'node:crypto'
import { connect, type Socket } from 'node:net'
import t from 'tap'
import { PeerAuth } from '../../lib/cluster/peer-auth.js'
import { PeerClient } from '../../lib/cluster/peer-client.js'
import { openIdleSockets } from '../helpers/idle-sockets.js'
import { rawRequest, replyFields, startServer, waitUntil } from '../helpers/server.js'

// Idle sockets cannot lock a server: the oldest connection still without its request line makes room for a
// newcomer, peers have a budget of their own, and new ids are rationed per source address.

const SECRET = Buffer.from('a lockout test secret, long enough')
const MAX = 8
const CROWD = 300

const fields = (line: string | undefined) => replyFields(line ?? 'status:closed')

t.test('a full server evicts its oldest pending connections first, with BUSY', async (t) => {
  const server = await startServer(t, { maxConnections: MAX })
  const { port } = server.address
  const idle = await openIdleSockets(t, port, CROWD)
  const evicted = await Promise.all(idle.slice(0, CROWD - MAX).map((s) => s.reply))
  t.same(evicted.map((line) => fields(line).code), Array(CROWD - MAX).fill('BUSY'), `the ${CROWD - MAX} oldest were evicted`)
  t.equal(fields(evicted[0]).message, `the server is at its limit of ${MAX} connections; try again shortly`)
  t.same(idle.slice(CROWD - MAX).map((s) => s.answered), Array(MAX).fill(false), `the ${MAX} newest are still waiting`)
  t.same(server.connections, { pending: MAX, clients: 0, peers: 0 })

  t.equal(fields((await rawRequest(port, ['op:hello\n'])).line).status, 'ok', 'an honest request gets through')
  t.match(fields(await idle[CROWD - MAX]!.reply), { code: 'BUSY' }, 'by evicting the oldest still pending')
  t.same(idle.slice(CROWD - MAX + 1).map((s) => s.answered), Array(MAX - 1).fill(false), 'and only that one')
})

t.test('peers have their own budget, which a crowd of client sockets cannot take', async (t) => {
  const server = await startServer(t, { maxConnections: MAX, maxPeerConnections: 4, secret: SECRET })
  const { port } = server.address
  const node = `127.0.0.1:${port}`
  const idle = await openIdleSockets(t, port, CROWD)
  await idle[CROWD - MAX - 1]!.reply
  const peers = new PeerClient(new PeerAuth(SECRET), { idleTimeoutMs: 10_000 })

  // Replicas whose bodies are still coming: peer connections held open, more than the clients' limit allows.
  const held: { socket: Socket }[] = []
  for (let i = 0; i < 4; i++) {
    const replica = await peers.open(node, { op: 'replicate', v: 1, id_cliente: randomUUID(), nome_arquivo: `r${i}`, tamanho_arquivo: 10, hash_arquivo: '*' })
    replica.socket.write('x')
    held.push(replica)
  }
  t.teardown(() => held.forEach((r) => r.socket.destroy()))
  await waitUntil('4 peer connections', () => server.connections.peers === 4)
  // Newcomers now evict only idle sockets: the peers hold none of the clients' slots.
  await openIdleSockets(t, port, MAX)
  await waitUntil('the clients\' slots to fill with pending sockets', () => server.connections.pending === MAX)
  t.same(server.connections, { pending: MAX, clients: 0, peers: 4 }, 'clients and peers counted apart')

  await t.rejects(peers.request(node, { op: 'ping', v: 1 }), { code: 'BUSY', message: /limit of 4 peer connections/ }, 'a fifth peer is over the peers\' budget')
  t.equal(fields((await rawRequest(port, ['op:hello\n'])).line).status, 'ok', 'and clients are still served beside the peers')

  held.pop()!.socket.destroy()
  await waitUntil('a peer slot to free', () => server.connections.peers === 3)
  t.match(await peers.request(node, { op: 'ping', v: 1 }), { status: 'ok' }, 'a freed peer slot serves the next peer')
})

t.test('new ids are rationed per source address', async (t) => {
  const server = await startServer(t, { helloRate: 2 })
  const { port } = server.address
  const hello = async (extra = '') => fields((await rawRequest(port, [`op:hello${extra}\n`])).line)
  const first = await hello()
  t.equal((await hello()).novo, '1')
  t.match(await hello(), { status: 'error', code: 'BUSY', message: 'too many new ids from 127.0.0.1; try again in a minute' })
  t.match(await hello(`|id_cliente:${first.id_cliente}`), { status: 'ok', novo: '0' }, 'checking an id it holds is not rationed')
})

t.test('a client that keeps trickling bytes after its answer does not keep its slot', async (t) => {
  const server = await startServer(t, { lingerMs: 200, idleTimeoutMs: 60_000 })
  const socket = await new Promise<Socket>((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port: server.address.port }, () => resolve(s))
    s.once('error', reject)
  })
  socket.on('error', () => {})
  socket.setEncoding('utf8')
  const answered = new Promise<string>((resolve) => socket.once('data', resolve))
  socket.write('op:node\n')
  t.match(await answered, /^status:ok\|/, 'answered')
  // One byte every 50 ms: each would restart an idle timer, but the answer is out, so the node closes anyway.
  const drip = setInterval(() => socket.writable && socket.write('x'), 50)
  t.teardown(() => clearInterval(drip))
  await waitUntil('the server to close the answered connection', () => socket.destroyed || socket.readableEnded || server.connections.clients === 0)
  await waitUntil('its slot to be free', () => server.connections.clients === 0 && server.connections.pending === 0)
  t.pass('the slot is free while the client still trickles')
})
