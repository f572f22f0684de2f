import { randomUUID } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import pino from 'pino'
import t from 'tap'
import { joinPrimary } from '../../lib/cluster/join.js'
import { PeerAuth } from '../../lib/cluster/peer-auth.js'
import { PeerClient } from '../../lib/cluster/peer-client.js'
import { startServer, waitUntil } from '../helpers/server.js'

// Joining and heartbeats by node id, in one process: the primary believes an advertised address only once that
// address answers with the joiner's id, and a ping answered by another id marks the member down.

const SECRET = Buffer.from('a test cluster secret, long enough')
const fast = { secret: SECRET, heartbeatIntervalMs: 20 }
const peers = new PeerClient(new PeerAuth(SECRET))
const at = (s: { address: { port: number } }) => `127.0.0.1:${s.address.port}`

t.test('a mirror joins by id: the primary records it, the mirror records the primary', async (t) => {
  const root = t.testdir()
  const primary = await startServer(t, { ...fast, dataDir: join(root, 'p') })
  const mirror = await startServer(t, { ...fast, dataDir: join(root, 'm'), join: at(primary) })
  await waitUntil('the join', () => mirror.identity.clusterId !== undefined)
  t.same(primary.mirrors().map((m) => [m.id, m.address]), [[mirror.identity.id, at(mirror)]])
  t.same(mirror.identity.primary, { id: primary.identity.id, address: at(primary) })
  t.match(JSON.parse(await readFile(join(root, 'm', 'node.json'), 'utf8')), { role: 'mirror', primary: { id: primary.identity.id } })
})

t.test('an address that answers as another node than the joiner is refused', async (t) => {
  const primary = await startServer(t, fast)
  const other = await startServer(t, fast)
  const joiner = randomUUID()
  await t.rejects(
    peers.request(at(primary), { op: 'join', node: at(other), no: joiner }),
    { code: 'USAGE', message: new RegExp(`answers as node ${other.identity.id}, not as the joining node ${joiner}`) },
  )
  t.same(primary.mirrors(), [])
})

t.test('a mirror refuses a primary whose id is not the one it recorded, and stops asking', async (t) => {
  const root = t.testdir()
  const first = await startServer(t, { ...fast, dataDir: join(root, 'p1') })
  const second = await startServer(t, { ...fast, dataDir: join(root, 'p2') })
  const mirror = await startServer(t, { ...fast, dataDir: join(root, 'm'), join: at(first) })
  await waitUntil('the join', () => mirror.identity.clusterId === first.identity.id)
  const errors: string[] = []
  const log = pino({ level: 'error' }, { write: (line: string) => errors.push(line) })
  const stop = new AbortController()
  t.teardown(() => stop.abort())
  // As a mirror told to join another primary would (its own is gone): that primary accepts, the mirror does not.
  await first.close(0)
  await mirror.identity.updatePrimaryAddress(at(second))
  await joinPrimary(peers, mirror.identity, () => at(mirror), log, stop.signal)
  t.match(errors.join(''), /is not this mirror's primary/, 'logged as an error; joinPrimary returned instead of retrying')
  t.equal(mirror.identity.clusterId, first.identity.id, 'the recorded primary is kept')

  // The second primary's heartbeats are refused: it cannot adopt the mirror.
  await t.rejects(
    peers.request(at(mirror), { op: 'ping', no: mirror.identity.id, primario: second.identity.id, endereco: at(second) }),
    { code: 'USAGE', message: /mirror of node .*, not of node/ },
  )
  await waitUntil('the second primary to mark it down', () => second.mirrors().every((m) => !m.up))
  t.equal(second.mirrors()[0]?.up, false, 'down on the primary that is not its own')
})

t.test('a mirror keeps the address its own primary gives in pings', async (t) => {
  const root = t.testdir()
  const primary = await startServer(t, { ...fast, dataDir: join(root, 'p') })
  const mirror = await startServer(t, { ...fast, dataDir: join(root, 'm'), join: `localhost:${primary.address.port}` })
  await waitUntil('the primary address to come from a ping', () => mirror.identity.primary?.address === at(primary))
  // NodeIdentity writes before it changes what the node acts on, so what it acts on is on disk.
  t.match(JSON.parse(await readFile(join(root, 'm', 'node.json'), 'utf8')), { primary: { address: at(primary) } }, 'persisted')
  const reply = await peers.request(at(mirror), { op: 'ping', no: mirror.identity.id, primario: primary.identity.id })
  t.equal(reply.no, mirror.identity.id, 'its own primary is answered, with the mirror\'s id')
})

t.test('a member whose address answers as another node is marked down', async (t) => {
  const root = t.testdir()
  const primary = await startServer(t, { ...fast, dataDir: join(root, 'p') })
  const mirror = await startServer(t, { ...fast, dataDir: join(root, 'm'), join: at(primary) })
  await waitUntil('the join', () => primary.mirrors().some((m) => m.up))
  const port = mirror.address.port
  await mirror.close(0)
  // Another node now answers at the mirror's address (its data dir wiped, or the port reused).
  const impostor = await startServer(t, { ...fast, dataDir: join(root, 'other'), port })
  await waitUntil('the member to be marked down', () => primary.mirrors()[0]?.answeredAs === impostor.identity.id)
  t.match(primary.mirrors(), [{ id: mirror.identity.id, up: false, answeredAs: impostor.identity.id }])
})
