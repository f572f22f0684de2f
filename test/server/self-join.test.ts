import t from 'tap'
import { networkInterfaces } from 'node:os'
import { isOwnAddress } from '../../lib/cluster/self-address.js'
import { PeerAuth } from '../../lib/cluster/peer-auth.js'
import { PeerClient } from '../../lib/cluster/peer-client.js'
import { startServer } from '../helpers/server.js'

// A node must never become its own mirror: a later `replicas f 0` would send `drop` to itself and delete its
// only copy. The usual cause is a mirror on another machine left on --host 127.0.0.1, which advertises
// 127.0.0.1:PORT — on the primary, the primary itself when the ports match.

const SECRET = Buffer.from('a test cluster secret, long enough')

t.test('isOwnAddress', async (t) => {
  const lo = { host: '127.0.0.1', port: 7420 }
  t.ok(isOwnAddress('127.0.0.1:7420', lo), 'the same host and port')
  t.ok(isOwnAddress('localhost:7420', lo), 'another loopback form')
  t.ok(isOwnAddress('127.0.1.1:7420', lo), 'anywhere in 127/8')
  t.ok(isOwnAddress('[::1]:7420', lo), 'IPv6 loopback')
  t.ok(isOwnAddress('0.0.0.0:7420', lo), 'a wildcard')
  t.notOk(isOwnAddress('127.0.0.1:7421', lo), 'another port is another node')
  t.notOk(isOwnAddress('10.0.0.7:7420', lo), 'a remote host on our port')
  t.notOk(isOwnAddress('not an address:x', lo), 'an address that does not parse is not ours')
  const wild = { host: '0.0.0.0', port: 7420 }
  t.ok(isOwnAddress('127.0.0.1:7420', wild), 'a wildcard listener answers on loopback')
  const mine = Object.values(networkInterfaces())
    .flat()
    .find((a) => a && a.family === 'IPv4' && !a.internal)
  if (mine) t.ok(isOwnAddress(`${mine.address}:7420`, wild), 'and on each of its interfaces')
  t.notOk(isOwnAddress('192.0.2.1:7420', wild), 'but not on an address this machine does not have')
  const concrete = { host: '10.0.0.5', port: 7420 }
  t.ok(isOwnAddress('10.0.0.5:7420', concrete))
  t.notOk(isOwnAddress('127.0.0.1:7420', concrete), 'loopback does not reach a node listening on one interface only')
  t.ok(isOwnAddress('[::ffff:10.0.0.5]:7420', concrete), 'an IPv4-mapped form is the same host')
})

t.test('a join naming the node itself is refused, and the node does not become its own mirror', async (t) => {
  const primary = await startServer(t, { secret: SECRET, heartbeatIntervalMs: 60_000 })
  const { port } = primary.address
  const peers = new PeerClient(new PeerAuth(SECRET))
  for (const node of [`127.0.0.1:${port}`, `localhost:${port}`, `0.0.0.0:${port}`]) {
    await t.rejects(peers.request(`127.0.0.1:${port}`, { op: 'join', node }), { code: 'USAGE', message: /own address.*--advertise/ }, node)
  }
  t.same(primary.mirrors(), [], 'no mirror recorded')
  await peers.request(`127.0.0.1:${port}`, { op: 'join', node: `127.0.0.1:${port + 1}` })
  t.same(
    primary.mirrors().map((m) => m.address),
    [`127.0.0.1:${port + 1}`],
    'another port on the same host is a mirror like any other',
  )
})
