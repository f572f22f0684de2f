import { randomUUID } from 'node:crypto'
import t from 'tap'
import { PeerAuth } from '../../lib/cluster/peer-auth.js'
import { PeerClient } from '../../lib/cluster/peer-client.js'
import { startServer } from '../helpers/server.js'

// A node must never become its own mirror: a later `replicas f 0` would send `drop` to itself and delete its
// only copy. The usual cause is a mirror on another machine left on --host 127.0.0.1, which advertises
// 127.0.0.1:PORT — on the primary, the primary itself when the ports match. The primary no longer parses
// addresses to see this: it dials the advertised address and refuses it when its own id answers there, which
// catches every spelling (loopback forms, a wildcard, an interface, a host name).

const SECRET = Buffer.from('a test cluster secret, long enough')

t.test('a join whose address answers with the primary\'s own id is refused, however the address is spelled', async (t) => {
  const primary = await startServer(t, { secret: SECRET, heartbeatIntervalMs: 60_000 })
  const { port } = primary.address
  const peers = new PeerClient(new PeerAuth(SECRET))
  for (const node of [`127.0.0.1:${port}`, `localhost:${port}`, `0.0.0.0:${port}`]) {
    await t.rejects(
      peers.request(`127.0.0.1:${port}`, { op: 'join', node, no: randomUUID() }),
      { code: 'USAGE', message: /answers as this very node.*--advertise/ },
      node,
    )
  }
  t.same(primary.mirrors(), [], 'no mirror recorded')
  // 127.0.1.1 is loopback too, but a node on 127.0.0.1 does not answer there: nobody does, so nothing is added.
  await t.rejects(
    peers.request(`127.0.0.1:${port}`, { op: 'join', node: `127.0.1.1:${port}`, no: randomUUID() }),
    { code: 'USAGE', message: /could not check the joining node at 127\.0\.1\.1.*--advertise/ },
    'an address nobody answers at',
  )
  await t.rejects(peers.request(`127.0.0.1:${port}`, { op: 'join', node: `127.0.0.1:${port}` }), { code: 'USAGE', message: /sent no node id/ }, 'a joiner without an id')
  t.same(primary.mirrors(), [])
})

t.test('a joiner that carries the primary\'s own id (a copy of its data dir) is refused before any dialling', async (t) => {
  const primary = await startServer(t, { secret: SECRET, heartbeatIntervalMs: 60_000 })
  const peers = new PeerClient(new PeerAuth(SECRET))
  await t.rejects(
    peers.request(`127.0.0.1:${primary.address.port}`, { op: 'join', node: '127.0.0.1:1', no: primary.identity.id }),
    { code: 'USAGE', message: /own id.*empty --data/ },
  )
  t.same(primary.mirrors(), [])
})

t.test('a mirror takes no joins (a node told to join itself is a mirror already, and refuses its own join)', async (t) => {
  const loner = await startServer(t, { secret: SECRET, heartbeatIntervalMs: 60_000 })
  const peers = new PeerClient(new PeerAuth(SECRET))
  const self = `127.0.0.1:${loner.address.port}`
  t.equal(loner.identity.role, 'primary')
  await t.rejects(peers.request(self, { op: 'leave', no: randomUUID() }), { code: 'NOT_FOUND' }, 'a primary answers leave')
  const mirror = await startServer(t, { secret: SECRET, heartbeatIntervalMs: 60_000, join: self })
  const own = `127.0.0.1:${mirror.address.port}`
  await t.rejects(peers.request(own, { op: 'join', node: own, no: randomUUID() }), { code: 'NOT_PRIMARY' }, 'a mirror takes no joins')
  t.same(mirror.mirrors(), [])
})
