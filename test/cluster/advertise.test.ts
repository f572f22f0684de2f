import pino from 'pino'
import t from 'tap'
import { advertisedAddress } from '../../lib/cluster/heartbeat.js'
import { joinPrimary } from '../../lib/cluster/join.js'
import { PeerAuth } from '../../lib/cluster/peer-auth.js'
import { PeerClient } from '../../lib/cluster/peer-client.js'
import { startServer, waitUntil } from '../helpers/server.js'

// What a mirror tells its primary to dial. A wildcard listen address (0.0.0.0, ::) is no address to dial, so a
// mirror listening on one names the local address of the connection that reached its primary.

const SECRET = Buffer.from('a test cluster secret, long enough')

t.test('advertisedAddress', async (t) => {
  t.equal(advertisedAddress('0.0.0.0', 7421, undefined, '10.0.0.7'), '10.0.0.7:7421', '0.0.0.0: the interface used')
  t.equal(advertisedAddress('::', 7421, undefined, 'fd00::7'), '[fd00::7]:7421', ':: too, bracketed')
  t.equal(advertisedAddress('0.0.0.0', 7421, 'beta:7420', '10.0.0.7'), 'beta:7420', '--advertise wins')
  t.equal(advertisedAddress('127.0.0.1', 7421, undefined, '127.0.0.1'), '127.0.0.1:7421', 'a concrete host is kept')
  t.equal(advertisedAddress('192.168.1.2', 7421, undefined, '10.0.0.7'), '192.168.1.2:7421', 'even if the route went elsewhere')
  t.equal(advertisedAddress('0.0.0.0', 7421, undefined, undefined), '0.0.0.0:7421', 'no socket address: nothing better to say')
})

t.test('a mirror on a wildcard host joins as the loopback address it reached the primary from', async (t) => {
  const primary = await startServer(t, { secret: SECRET, heartbeatIntervalMs: 60_000 })
  const at = `127.0.0.1:${primary.address.port}`
  // The mirror itself listens on 127.0.0.1 (tests bind nothing wider); its join then names the address the way a
  // node on 0.0.0.0 would, from the connection it reached the primary on. The primary checks that address
  // answers with the mirror's id, so it must be the mirror's real port.
  const mirror = await startServer(t, { secret: SECRET, heartbeatIntervalMs: 60_000, join: at })
  await waitUntil('the mirror to join', () => primary.mirrors().length === 1)
  const peers = new PeerClient(new PeerAuth(SECRET))
  const stop = new AbortController()
  t.teardown(() => stop.abort())
  const node = (socket: { localAddress?: string }) => advertisedAddress('0.0.0.0', mirror.address.port, undefined, socket.localAddress)
  await joinPrimary(peers, mirror.identity, node, pino({ level: 'silent' }), stop.signal)
  t.same(
    primary.mirrors().map((m) => [m.id, m.address]),
    [[mirror.identity.id, `127.0.0.1:${mirror.address.port}`]],
    'the primary records 127.0.0.1, not 0.0.0.0, for the one member',
  )
})
