import { once } from 'node:events'
import { createServer, type AddressInfo } from 'node:net'
import t from 'tap'
import { askWithin, exchange, openConnection } from '../../lib/net/connection.js'
import { closedPort, listen } from '../helpers/fake-server.js'
import { abandoned } from '../helpers/fake-node.js'

t.test('a closed port is UNREACHABLE, naming the address and `npm start`', async (t) => {
  const port = await closedPort()
  const err = await openConnection({ host: '127.0.0.1', port }).then(
    () => undefined,
    (e: unknown) => e,
  )
  t.match(err, { name: 'DepositoError', code: 'UNREACHABLE' })
  const message = (err as Error).message
  t.match(message, `127.0.0.1:${port}`)
  t.match(message, '`npm start`')
  t.match(message, '--server')
  t.match((err as Error).cause, { code: 'ECONNREFUSED' }, 'the system error stays as the cause')
})

t.test('exchange on a closed port rejects the same way', async (t) => {
  const port = await closedPort()
  await t.rejects(exchange({ host: '127.0.0.1', port }, { op: 'hello' }), { code: 'UNREACHABLE' })
})

t.test('a server that goes quiet past the idle timeout is TIMEOUT', async (t) => {
  const { port } = await listen(t, (s) => s.resume())
  await t.rejects(exchange({ host: '127.0.0.1', port }, { op: 'hello' }, { idleTimeoutMs: 50 }), {
    code: 'TIMEOUT',
    message: `the server at 127.0.0.1:${port} went quiet`,
  })
})

t.test('openConnection resolves with a connected socket', async (t) => {
  const server = createServer((s) => s.end())
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  const socket = await openConnection({ host: '127.0.0.1', port: (server.address() as AddressInfo).port })
  t.teardown(() => socket.destroy())
  t.equal(socket.remotePort, (server.address() as AddressInfo).port)
  t.equal(socket.allowHalfOpen, true, 'half-open, so the request can end while the reply is read')
})

t.test('askWithin: the reply line in time; a node that accepts and stays silent is UNREACHABLE and let go', async (t) => {
  const answering = await listen(t, (s) => s.once('data', () => s.end('status:ok|papel:primario\n')))
  t.same(await askWithin({ host: '127.0.0.1', port: answering.port }, { op: 'node' }, 1000), { status: 'ok', papel: 'primario' })
  const silent = await listen(t, (s) => s.resume())
  await t.rejects(askWithin({ host: '127.0.0.1', port: silent.port }, { op: 'node' }, 100), {
    code: 'UNREACHABLE',
    message: `the server at 127.0.0.1:${silent.port} accepted the connection but did not answer within 0.1 s`,
  })
  await abandoned(silent.sockets[0]!)
  t.pass('the client hung up')
})
