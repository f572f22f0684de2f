import { randomUUID } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { NodeIdentity } from '../../lib/cluster/node-identity.js'
import { startServer } from '../helpers/server.js'

// DATA/node.json: an id made once, a role that only moves primary → mirror, and the primary a mirror belongs to.

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/
const SECRET = Buffer.from('a test cluster secret, long enough')

async function dataDir(t: Test): Promise<string> {
  const dir = t.testdir()
  await mkdir(join(dir, 'tmp'), { recursive: true })
  return dir
}

const onDisk = async (dir: string) => JSON.parse(await readFile(join(dir, 'node.json'), 'utf8')) as Record<string, unknown>

t.test('created at first open, with a uuid v4 and the primary role, and kept for ever after', async (t) => {
  const dir = await dataDir(t)
  const first = await NodeIdentity.open(dir)
  t.match(first.id, UUID_V4)
  t.equal(first.role, 'primary')
  t.equal(first.clusterId, first.id, 'a primary names its own cluster')
  t.equal(first.primary, undefined)
  t.same(await onDisk(dir), { id: first.id, role: 'primary' }, 'written before anything answers under it')
  const again = await NodeIdentity.open(dir)
  t.equal(again.id, first.id, 'the same id at the next start')
})

t.test('becoming a mirror is persisted; the primary id is recorded once and must match after that', async (t) => {
  const dir = await dataDir(t)
  const node = await NodeIdentity.open(dir)
  await node.becomeMirrorOf('127.0.0.1:7420', 0)
  t.equal(node.role, 'mirror')
  t.equal(node.clusterId, undefined, 'no cluster before a join is answered')
  const primaryId = randomUUID()
  t.equal(await node.acceptPrimary(primaryId), true)
  t.equal(await node.acceptPrimary(primaryId), true, 'the same primary again')
  t.equal(await node.acceptPrimary(randomUUID()), false, 'another primary is refused')
  await node.updatePrimaryAddress('localhost:7420')
  await node.updatePrimaryAddress('localhost:7420')
  t.same(await onDisk(dir), { id: node.id, role: 'mirror', primary: { id: primaryId, address: 'localhost:7420' } })
  const reopened = await NodeIdentity.open(dir)
  t.same([reopened.role, reopened.clusterId, reopened.primary], ['mirror', primaryId, { id: primaryId, address: 'localhost:7420' }])
  await reopened.becomeMirrorOf('10.0.0.1:7420', 5)
  t.same(reopened.primary, { id: primaryId, address: '10.0.0.1:7420' }, 'a mirror told to join elsewhere keeps the id it must find there')
})

t.test('a primary that has issued client ids refuses to become a mirror', async (t) => {
  const dir = await dataDir(t)
  const node = await NodeIdentity.open(dir)
  await t.rejects(node.becomeMirrorOf('127.0.0.1:7420', 2), { code: 'USAGE', message: /holds a primary's files \(2 clients\).*empty --data/ })
  t.equal(node.role, 'primary')
  t.same(await onDisk(dir), { id: node.id, role: 'primary' }, 'nothing changed on disk')
})

t.test('a damaged node.json stops the node rather than giving it a new identity', async (t) => {
  for (const text of ['{"id":"nope","role":"primary"}', `{"id":"${randomUUID()}","role":"king"}`, `{"id":"${randomUUID()}","role":"mirror"}`]) {
    const dir = await dataDir(t)
    await writeFile(join(dir, 'node.json'), text)
    await t.rejects(NodeIdentity.open(dir), { code: 'INTERNAL', message: /node\.json is damaged/ }, text)
  }
})

t.test('the server: --join on a primary data dir with clients is refused before listening; an empty one becomes a mirror', async (t) => {
  const root = t.testdir()
  const primary = await startServer(t, { secret: SECRET, dataDir: join(root, 'p'), heartbeatIntervalMs: 60_000 })
  await primary.store.issueClientId()
  await primary.close(0)
  await t.rejects(startServer(t, { secret: SECRET, dataDir: join(root, 'p'), join: '127.0.0.1:1' }), { code: 'USAGE', message: /1 clients/ })
  t.equal((await NodeIdentity.open(join(root, 'p'))).role, 'primary', 'still a primary')
  const lone = await startServer(t, { dataDir: join(root, 'lone') })
  t.match(lone.identity.id, UUID_V4, 'a node without a secret has an id too')
  await lone.close(0)
  const mirror = await startServer(t, { secret: SECRET, dataDir: join(root, 'lone'), join: '127.0.0.1:1' })
  t.same([mirror.identity.id, mirror.identity.role], [lone.identity.id, 'mirror'], 'same id, now a mirror')
  await mirror.close(0)
  await t.rejects(startServer(t, { dataDir: join(root, 'lone') }), { code: 'USAGE', message: /mirror's.*needs the cluster secret/ })
})
