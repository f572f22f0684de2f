import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import { Readable, Writable } from 'node:stream'
import { readFile, writeFile } from 'node:fs/promises'
import t, { type Test } from 'tap'
import { DepositoClient } from '../../lib/client/client.js'
import { PeerAuth } from '../../lib/cluster/peer-auth.js'
import { PeerClient } from '../../lib/cluster/peer-client.js'
import { removeMirrorCommand } from '../../lib/cli/remove-mirror.js'
import type { DepositoServer } from '../../lib/server/server.js'
import { startServer, waitUntil } from '../helpers/server.js'

// `leave`, in one process (test/cluster/membership-by-id.test.ts runs it end to end with real processes): the
// mirror is forgotten for good, its tombstones go, and its files are copied again to the mirrors left.

const SECRET = Buffer.from('a test cluster secret, long enough')
const at = (s: DepositoServer) => `127.0.0.1:${s.address.port}`

async function cluster(t: Test) {
  const root = t.testdir()
  const common = { secret: SECRET, heartbeatIntervalMs: 20, repairIntervalMs: 600_000, replicaStallMs: 2_000, replicaAckMs: 5_000 }
  const primary = await startServer(t, { ...common, dataDir: join(root, 'p') })
  const mirrors = [
    await startServer(t, { ...common, dataDir: join(root, 'm0'), join: at(primary) }),
    await startServer(t, { ...common, dataDir: join(root, 'm1'), join: at(primary) }),
  ]
  await waitUntil('both mirrors to join', () => primary.mirrors().filter((m) => m.up).length === 2)
  const client = new DepositoClient({ server: { host: '127.0.0.1', port: primary.address.port } })
  return { root, primary, mirrors, client }
}

t.test('a dead mirror leaves: removed, off every record, its files copied again', async (t) => {
  const { root, primary, mirrors, client } = await cluster(t)
  const done = await client.deposit(Readable.from([Buffer.from('one copy')]), { name: 'f', size: 8, replicas: 1 })
  const id = await client.id()
  const dead = mirrors.find((m) => at(m) === done.mirrors[0])!
  const other = mirrors.find((m) => m !== dead)!
  const deadId = dead.identity.id
  const deadAt = at(dead)
  await dead.close(0)
  await waitUntil('the dead mirror marked down', () => primary.mirrors().some((m) => m.id === deadId && !m.up))
  const peers = new PeerClient(new PeerAuth(SECRET))
  await t.rejects(peers.request(at(primary), { op: 'leave', no: at(other) }), { code: 'USAGE', message: /is up; stop it before removing it/ })

  const out: string[] = []
  const sink = new Writable({ write: (chunk: Buffer, _enc, cb) => (out.push(chunk.toString()), cb()) })
  const secretFile = join(root, 'secret')
  await writeFile(secretFile, SECRET.toString() + '\n')
  await removeMirrorCommand(deadAt, { primary: at(primary), secretFile }, sink)
  t.same(out, [`removed mirror ${deadId} from the cluster of ${at(primary)}; 1 files copied to other mirrors\n`], 'resolved from its address')
  t.same(primary.store.stat(id, 'f')?.mirrors, [other.identity.id], 'the record names the other mirror only')
  t.ok(other.store.hasClient(id) && other.store.stat(id, 'f'), 'which holds a copy')
  t.same(primary.mirrors().map((m) => m.id), [other.identity.id])
  t.same(
    (await peers.request(at(primary), { op: 'leave', no: deadId })).arquivos,
    '0',
    'leaving again is harmless',
  )
  await t.rejects(peers.request(at(primary), { op: 'leave', no: randomUUID() }), { code: 'NOT_FOUND' })
  await t.rejects(peers.request(at(other), { op: 'leave', no: deadId }), { code: 'NOT_PRIMARY' }, 'a mirror takes no leave')
  await t.rejects(
    peers.request(at(primary), { op: 'join', node: '127.0.0.1:1', no: deadId }),
    { code: 'USAGE', message: /was removed from this cluster/ },
    'its joins are refused',
  )
})

t.test('leave clears tombstones that name the removed mirror', async (t) => {
  const { primary, mirrors, client } = await cluster(t)
  await client.deposit(Readable.from([Buffer.from('on both')]), { name: 'd', size: 7, replicas: 2 })
  const [gone] = mirrors as [DepositoServer, DepositoServer]
  const [goneAt, goneId] = [at(gone), gone.identity.id]
  await gone.close(0)
  await waitUntil('the mirror marked down', () => primary.mirrors().some((m) => !m.up))
  await client.delete('d')
  const tombstones = async () => JSON.parse(await readFile(join(primary.store.layout.root, 'tombstones.json'), 'utf8')) as { copies: { mirror: string }[] }
  t.same((await tombstones()).copies.map((c) => c.mirror), [goneId], 'a tombstone for the down mirror')
  const peers = new PeerClient(new PeerAuth(SECRET))
  t.equal((await peers.request(at(primary), { op: 'leave', no: goneAt })).no, goneId)
  t.same((await tombstones()).copies, [], 'cleared with it')
})

t.test('remove-mirror needs the secret', async (t) => {
  const saved = process.env.DEPOSITO_SECRET
  delete process.env.DEPOSITO_SECRET
  t.teardown(() => {
    if (saved !== undefined) process.env.DEPOSITO_SECRET = saved
  })
  await t.rejects(removeMirrorCommand(randomUUID(), { primary: '127.0.0.1:1' }), { code: 'USAGE', message: /needs the cluster secret/ })
})
