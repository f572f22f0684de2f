import { randomUUID } from 'node:crypto'
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable, Writable } from 'node:stream'
import t, { type Test } from 'tap'
import { DepositoClient } from '../../lib/client/client.js'
import { PeerAuth } from '../../lib/cluster/peer-auth.js'
import type { DepositoServer } from '../../lib/server/server.js'
import { rawRequest, replyFields, startServer } from '../helpers/server.js'

// A primary and its mirrors in one process: the fan-out, the replica protocol and the heartbeats, end to end,
// with every node's store inspected directly. (test/cluster/ does the same with real processes.)

const SECRET = Buffer.from('a test cluster secret, long enough')
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex')

async function waitFor(what: string, check: () => boolean): Promise<void> {
  // Heartbeats run every 20 ms here; a bounded wait on their effect, not a fixed sleep.
  for (let i = 0; i < 500 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 10))
  if (!check()) throw new Error(`timed out waiting for ${what}`)
}

async function cluster(t: Test, mirrorCount: number, heartbeatIntervalMs = 20) {
  const fast = { secret: SECRET, heartbeatIntervalMs, replicaStallMs: 2_000, replicaAckMs: 5_000 }
  // Each node its own data dir (t.testdir() is one dir per test, and calling it again would empty it).
  const root = t.testdir()
  const primary = await startServer(t, { ...fast, dataDir: join(root, 'primary') })
  const joinAt = `127.0.0.1:${primary.address.port}`
  const mirrors: DepositoServer[] = []
  for (let i = 0; i < mirrorCount; i++) mirrors.push(await startServer(t, { ...fast, dataDir: join(root, `mirror-${i}`), join: joinAt }))
  await waitFor('mirrors to join', () => primary.mirrors().filter((m) => m.up).length === mirrorCount)
  const client = new DepositoClient({ server: { host: '127.0.0.1', port: primary.address.port } })
  return { root, primary, mirrors, client }
}

t.test('a deposit with replicas lands, verified, on the primary and the chosen mirrors', async (t) => {
  const { primary, mirrors, client } = await cluster(t, 3)
  const body = Buffer.alloc(3 * 1024 * 1024 + 11, 'deposito')
  const done = await client.deposit(Readable.from([body]), { name: 'r.bin', size: body.length, replicas: 2 })
  t.same([done.copies, done.degraded, done.mirrors.length], [3, false, 2])
  const id = await client.id()
  const holders = mirrors.filter((m) => done.mirrors.includes(`127.0.0.1:${m.address.port}`))
  t.equal(holders.length, 2, 'the reply names the mirrors that hold it')
  for (const node of [primary, ...holders]) {
    const info = node.store.stat(id, 'r.bin')
    t.equal(info?.sha256, sha(body))
    t.equal(sha(await readFile(node.store.layout.blob(id, sha(body)))), sha(body), 'bytes on disk match')
  }
  const other = mirrors.find((m) => !holders.includes(m))!
  t.notOk(other.store.hasClient(id) && other.store.stat(id, 'r.bin'), 'the third mirror was not asked')
})

t.test('a chunked deposit replicates too', async (t) => {
  const { mirrors, client } = await cluster(t, 1)
  const chunks = [Buffer.from('first '), Buffer.from('second '), Buffer.from('third')]
  const done = await client.deposit(Readable.from(chunks), { name: 'piped', replicas: 1 })
  t.equal(done.copies, 2)
  t.equal(mirrors[0]!.store.stat(await client.id(), 'piped')?.sha256, sha(Buffer.concat(chunks)))
})

t.test('more replicas than the cluster has mirrors is refused; with its mirror dead (seen by heartbeat), degraded', async (t) => {
  const { primary, mirrors, client } = await cluster(t, 1)
  await t.rejects(client.deposit(Readable.from([Buffer.from('x')]), { name: 'x', size: 1, replicas: 2 }), { code: 'NO_REPLICAS' })
  await mirrors[0]!.close(0)
  await waitFor('the mirror to be marked down', () => primary.mirrors().every((m) => !m.up))
  const done = await client.deposit(Readable.from([Buffer.from('x')]), { name: 'x', size: 1, replicas: 1 })
  t.same([done.copies, done.degraded, done.mirrors], [1, true, []], 'stored on the primary alone, for the repair pass to complete')
})

t.test('a mirror that cannot be reached makes the deposit degraded, not failed', async (t) => {
  // No heartbeat during the test (joining marks a mirror up): the primary goes on believing the stopped one live.
  const { primary, mirrors, client } = await cluster(t, 2, 60_000)
  const gone = mirrors[0]!
  const goneAddress = `127.0.0.1:${gone.address.port}`
  await gone.close(0)
  t.ok(primary.mirrors().find((m) => m.address === goneAddress)?.up, 'still believed up')
  const done = await client.deposit(Readable.from([Buffer.from('abc')]), { name: 'd', size: 3, replicas: 2 })
  t.same([done.copies, done.degraded], [2, true])
  t.same(done.mirrors, [`127.0.0.1:${mirrors[1]!.address.port}`])
})

t.test('peer requests need the cluster secret', async (t) => {
  const { root, primary, mirrors } = await cluster(t, 1)
  const port = primary.address.port
  const unsigned = replyFields((await rawRequest(port, ['op:join|node:127.0.0.1:1\n'])).line)
  t.same([unsigned.status, unsigned.code], ['error', 'UNAUTHORIZED'])
  const forged = new PeerAuth(Buffer.from('some other secret of enough length')).sign({ op: 'join', node: '127.0.0.1:1' })
  t.equal(replyFields((await rawRequest(port, [forged])).line).code, 'UNAUTHORIZED')
  const stale = new PeerAuth(SECRET).sign({ op: 'join', node: '127.0.0.1:1' }, Date.now() - 10 * 60_000)
  t.equal(replyFields((await rawRequest(port, [stale])).line).code, 'UNAUTHORIZED')
  t.notOk(primary.mirrors().some((m) => m.address === '127.0.0.1:1'), 'no forged mirror registered')
  const ping = replyFields((await rawRequest(mirrors[0]!.address.port, [new PeerAuth(SECRET).sign({ op: 'ping' })])).line)
  t.same([ping.status, ping.arquivos], ['ok', '0'])
  const lone = await startServer(t, { dataDir: join(root, 'lone') })
  t.equal(replyFields((await rawRequest(lone.address.port, [new PeerAuth(SECRET).sign({ op: 'ping' })])).line).code, 'UNAUTHORIZED')
})

t.test('drop removes a replica, and says when there was none', async (t) => {
  const { mirrors, client } = await cluster(t, 1)
  await client.deposit(Readable.from([Buffer.from('bye')]), { name: 'gone', size: 3, replicas: 1 })
  const id = await client.id()
  // Each request signed afresh: the same signed line twice would be a replay.
  const drop = () => new PeerAuth(SECRET).sign({ op: 'drop', id_cliente: id, nome_arquivo: 'gone', para: mirrors[0]!.identity.id })
  // Addressed to another node, or sent to the primary (a recording replayed there): refused, nothing removed.
  const misaddressed = new PeerAuth(SECRET).sign({ op: 'drop', id_cliente: id, nome_arquivo: 'gone', para: randomUUID() })
  t.match(replyFields((await rawRequest(mirrors[0]!.address.port, [misaddressed])).line), { code: 'UNAUTHORIZED', message: /another node/ })
  const unaddressed = new PeerAuth(SECRET).sign({ op: 'drop', id_cliente: id, nome_arquivo: 'gone' })
  t.match(replyFields((await rawRequest(mirrors[0]!.address.port, [unaddressed])).line), { code: 'UNAUTHORIZED' }, 'a drop naming no node is refused')
  t.ok(mirrors[0]!.store.stat(id, 'gone'), 'the copy is still there')
  t.equal(replyFields((await rawRequest(mirrors[0]!.address.port, [drop()])).line).removido, '1')
  t.equal(mirrors[0]!.store.stat(id, 'gone'), undefined)
  t.equal(replyFields((await rawRequest(mirrors[0]!.address.port, [drop()])).line).removido, '0')
})

t.test('--join without a secret is a usage error', async (t) => {
  await t.rejects(startServer(t, { join: '127.0.0.1:1' }), { code: 'USAGE' })
})

t.test('delete removes the copies on live mirrors too', async (t) => {
  const { mirrors, client } = await cluster(t, 2)
  await client.deposit(Readable.from([Buffer.from('twice')]), { name: 'both', size: 5, replicas: 2 })
  const id = await client.id()
  t.ok(mirrors.every((m) => m.store.stat(id, 'both')), 'both mirrors hold it')
  await client.delete('both')
  t.ok(mirrors.every((m) => m.store.stat(id, 'both') === undefined), 'and neither does after the delete')
})

t.test('with the primary down, a client with a server list reads from a mirror', async (t) => {
  const { primary, mirrors, client } = await cluster(t, 1)
  const body = Buffer.from('still here when the primary is not')
  await client.deposit(Readable.from([body]), { name: 'kept', size: body.length, replicas: 1 })
  const id = await client.id()
  const primaryPort = primary.address.port
  await primary.close(0)
  const failover = new DepositoClient({
    server: [{ host: '127.0.0.1', port: primaryPort }, { host: '127.0.0.1', port: mirrors[0]!.address.port }],
    id,
  })
  const chunks: Buffer[] = []
  const sink = new Writable({ write: (c: Buffer, _e, cb) => (chunks.push(c), cb()) })
  const info = await failover.retrieve('kept', sink)
  t.equal(info.sha256, sha(body))
  t.same(Buffer.concat(chunks), body)
  t.same((await failover.list()).map((f) => f.name), ['kept'])
})

t.test('the record names the mirrors that hold a copy, and status counts files short of copies', async (t) => {
  const { primary, mirrors, client } = await cluster(t, 2)
  const done = await client.deposit(Readable.from([Buffer.from('counted')]), { name: 'c', size: 7, replicas: 2 })
  const id = await client.id()
  // Records name mirrors by node id; the reply shows them to the client as addresses.
  const shown = (primary.store.stat(id, 'c')?.mirrors ?? []).map((m) => primary.mirrors().find((s) => s.id === m)?.address)
  t.same(shown.sort(), [...done.mirrors].sort(), 'holders are recorded, by id')
  t.same([...(primary.store.stat(id, 'c')?.mirrors ?? [])].sort(), mirrors.map((m) => m.identity.id).sort())
  const before = await client.status()
  t.same(
    before.nodes.map((n) => [n.role, n.up]),
    [['primary', true], ['mirror', true], ['mirror', true]],
  )
  t.equal(before.underReplicated, 0)
  await mirrors[0]!.close(0)
  await waitFor('the mirror to be marked down', () => primary.mirrors().some((m) => !m.up))
  const after = await client.status()
  t.equal(after.nodes.filter((n) => !n.up).length, 1)
  t.equal(after.underReplicated, 1, 'a copy on a down mirror does not count')
})
