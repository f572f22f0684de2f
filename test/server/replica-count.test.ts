import { createHash } from 'node:crypto'
import { readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable, Writable } from 'node:stream'
import t, { type Test } from 'tap'
import { DepositoClient } from '../../lib/client/client.js'
import { depositCommand, retrieveCommand, type Output } from '../../lib/cli/client-commands.js'
import { placeReplicas } from '../../lib/cluster/placement.js'
import type { DepositoServer, ServerOptions } from '../../lib/server/server.js'
import { startServer } from '../helpers/server.js'

// Keeping the count true: substitutes during a deposit, `replicas` up and down, an identical re-deposit that
// sends nothing, and the repair pass. In-process nodes, stores inspected directly.

const SECRET = Buffer.from('a test cluster secret, long enough')
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex')

async function waitFor(what: string, check: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 10))
  if (!check()) throw new Error(`timed out waiting for ${what}`)
}

async function cluster(t: Test, mirrorCount: number, options: Partial<ServerOptions> = {}) {
  const common = { secret: SECRET, heartbeatIntervalMs: 60_000, repairIntervalMs: 60_000, replicaStallMs: 2_000, replicaAckMs: 5_000, ...options }
  // Each node its own data dir (t.testdir() is one dir per test, and calling it again would empty it).
  const root = t.testdir()
  const primary = await startServer(t, { ...common, dataDir: join(root, 'primary') })
  const mirrors: DepositoServer[] = []
  for (let i = 0; i < mirrorCount; i++) {
    mirrors.push(await startServer(t, { ...common, dataDir: join(root, `mirror-${i}`), join: `127.0.0.1:${primary.address.port}` }))
  }
  await waitFor('mirrors to join', () => primary.mirrors().filter((m) => m.up).length === mirrorCount)
  const client = new DepositoClient({ server: { host: '127.0.0.1', port: primary.address.port } })
  // Addresses taken now: a closed server no longer has one.
  const addresses = new Map(mirrors.map((m) => [m, `127.0.0.1:${m.address.port}`]))
  const addressOf = (node: DepositoServer) => addresses.get(node)!
  const holders = async (name: string) => {
    const id = await client.id()
    return mirrors.filter((m) => m.store.hasClient(id) && m.store.stat(id, name)).map(addressOf).sort()
  }
  return { root, primary, mirrors, client, addressOf, holders }
}

t.test('a mirror lost during a deposit is replaced by a substitute copy from the primary', async (t) => {
  const { mirrors, client, addressOf, holders } = await cluster(t, 3)
  const id = await client.id()
  // Stop one of the two mirrors placement will pick (by node id), while the primary still believes it up.
  const [first] = placeReplicas(id, 'sub.bin', mirrors.map((m) => m.identity.id), 2)
  const victim = mirrors.find((m) => m.identity.id === first)!
  await victim.close(0)
  const body = Buffer.alloc(256 * 1024, 's')
  const done = await client.deposit(Readable.from([body]), { name: 'sub.bin', size: body.length, replicas: 2 })
  t.same([done.copies, done.degraded], [3, false], 'the count was met without the lost mirror')
  t.notOk(done.mirrors.includes(addressOf(victim)), 'the lost mirror is not counted')
  t.same(await holders('sub.bin'), [...done.mirrors].sort())
})

t.test('replicas grows from the primary copy and shrinks by dropping extras', async (t) => {
  const { client, holders } = await cluster(t, 2)
  await client.deposit(Readable.from([Buffer.from('grow me')]), { name: 'g', size: 7, replicas: 0 })
  t.same(await holders('g'), [])
  const grown = await client.replicas('g', 2)
  t.same([grown.replicas, grown.copies, grown.degraded], [2, 3, false])
  t.equal((await holders('g')).length, 2)
  const shrunk = await client.replicas('g', 1)
  t.same([shrunk.replicas, shrunk.copies], [1, 2])
  t.same(await holders('g'), shrunk.mirrors)
  await t.rejects(client.replicas('g', 3), { code: 'NO_REPLICAS' })
  await t.rejects(client.replicas('nope', 1), { code: 'NOT_FOUND' })
  t.equal((await client.list())[0]?.replicas, 1, 'the new count is recorded')
})

t.test('depositing an identical file changes its count and sends no body', async (t) => {
  const { root, primary, client, holders } = await cluster(t, 1)
  const file = join(root, 'same.txt')
  await writeFile(file, 'the same bytes, twice\n')
  let uploads = 0
  const begin = primary.store.beginUpload.bind(primary.store)
  primary.store.beginUpload = () => (uploads++, begin())
  const text: string[] = []
  const sink = new Writable({ write: (c: Buffer, _e, cb) => (text.push(c.toString()), cb()) })
  const out = { json: false, quiet: false, progress: false, stdout: sink, stderr: sink } as unknown as Output
  await depositCommand(client, out, file, {})
  t.equal(uploads, 1)
  const again = await depositCommand(client, out, file, { replicas: 1 })
  t.equal(uploads, 1, 'no second upload')
  t.same([again.replicas, again.copies], [1, 2])
  t.match(text.join(''), /already stored, unchanged \(2 copies, no bytes sent\)/)
  t.equal((await holders('same.txt')).length, 1)
  t.equal(again.sha256, sha('the same bytes, twice\n'))
})

t.test('the repair pass restores a count after a mirror dies', async (t) => {
  const { primary, mirrors, client, addressOf } = await cluster(t, 2, { heartbeatIntervalMs: 20, repairIntervalMs: 30, downGraceMs: 0 })
  const done = await client.deposit(Readable.from([Buffer.from('keep two')]), { name: 'r', size: 8, replicas: 1 })
  const holder = mirrors.find((m) => addressOf(m) === done.mirrors[0])!
  const other = mirrors.find((m) => m !== holder)!
  await holder.close(0)
  await waitFor('the holder to be marked down', () => primary.mirrors().some((m) => !m.up))
  const id = await client.id()
  await waitFor('repair to copy the file to the other mirror', () => other.store.hasClient(id) && other.store.stat(id, 'r') !== undefined)
  t.equal(other.store.stat(id, 'r')?.sha256, sha('keep two'))
  await waitFor('the record to name the new holder', () => primary.store.stat(id, 'r')?.mirrors?.includes(other.identity.id) === true)
  t.same(primary.store.stat(id, 'r')?.mirrors, [other.identity.id], 'the dead holder is forgotten')
  t.equal((await client.status()).underReplicated, 0)
  const tombstones = JSON.parse(await readFile(join(primary.store.layout.root, 'tombstones.json'), 'utf8')) as { copies: unknown[] }
  t.match(tombstones.copies, [{ owner: id, name: 'r', sha256: sha('keep two'), mirror: holder.identity.id }], 'its copy is tombstoned, to go when it is back')
})

t.test('reads never depend on one copy: missing or corrupt local bytes come back from a mirror', async (t) => {
  const { root, primary, client } = await cluster(t, 1)
  const body = Buffer.alloc(300_000, 'r')
  await client.deposit(Readable.from([body]), { name: 'safe', size: body.length, replicas: 1 })
  const id = await client.id()
  const blob = primary.store.layout.blob(id, sha(body))
  const collect = async () => {
    const chunks: Buffer[] = []
    await client.retrieve('safe', new Writable({ write: (c: Buffer, _e, cb) => (chunks.push(c), cb()) }))
    return Buffer.concat(chunks)
  }

  await rm(blob)
  t.same(await collect(), body, 'missing locally: served from the mirror')
  t.equal(sha(await readFile(blob)), sha(body), 'and the local copy is back')

  const bad = Buffer.from(body)
  bad[1234] ^= 0xff
  await writeFile(blob, bad)
  const out = join(root, 'safe.out')
  const quiet = new Writable({ write: (_c, _e, cb) => cb() }) as unknown as NodeJS.WriteStream
  await retrieveCommand(client, { json: false, quiet: true, progress: false, stdout: quiet, stderr: quiet }, 'safe', { output: out })
  t.same(await readFile(out), body, 'a corrupt local copy is cut off, repaired, and the retry gets good bytes')
  t.equal(sha(await readFile(blob)), sha(body), 'the local copy was repaired')
})
