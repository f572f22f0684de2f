import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import t, { type Test } from 'tap'
import { DepositoClient } from '../../lib/client/client.js'
import type { BlobStore } from '../../lib/store/blob-store.js'
import { startServer } from '../helpers/server.js'
import { flipByte } from '../helpers/store-files.js'

// A read finds the primary's copy rotten and fetches it back from a mirror; meanwhile the name changes. The
// fetched copy of the old version must not be committed over the change. In process; the change is made inside
// the store's repair commit, just before it takes the owner's lock, which is the widest window there is.

const SECRET = Buffer.from('a test cluster secret, long enough')
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex')

async function waitFor(what: string, check: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 10))
  if (!check()) throw new Error(`timed out waiting for ${what}`)
}

async function setup(t: Test) {
  const common = { secret: SECRET, heartbeatIntervalMs: 60_000, repairIntervalMs: 60_000, replicaStallMs: 2_000, replicaAckMs: 5_000 }
  const root = t.testdir()
  const primary = await startServer(t, { ...common, dataDir: join(root, 'primary') })
  await startServer(t, { ...common, dataDir: join(root, 'mirror'), join: `127.0.0.1:${primary.address.port}` })
  await waitFor('the mirror to join', () => primary.mirrors().filter((m) => m.up).length === 1)
  const client = new DepositoClient({ server: { host: '127.0.0.1', port: primary.address.port } })
  const v1 = Buffer.alloc(64 * 1024, 'version one')
  await client.deposit(Readable.from([v1]), { name: 'f', size: v1.length, replicas: 1 })
  const id = await client.id()
  await flipByte(primary.store.layout.blob(id, sha(v1)), 100)
  return { primary, client, id, v1 }
}

/** Runs `meanwhile` when the fetched copy is about to be committed; resolves with what the commit returned. */
function onRepairCommit(store: BlobStore, meanwhile: () => Promise<unknown>) {
  const commit = store.commitRepair.bind(store)
  return new Promise<unknown>((resolve) => {
    store.commitRepair = async (...args) => {
      await meanwhile()
      const result = await commit(...args)
      resolve(result)
      return result
    }
  })
}

async function storeDeposit(store: BlobStore, id: string, body: Buffer) {
  const upload = store.beginUpload()
  await pipeline(Readable.from([body]), upload.stream)
  return (await upload.commit(id, 'f', { size: body.length, sha256: sha(body), replicas: 0, mirrors: [] })).info
}

const drain = () => new Writable({ write: (_c, _e, cb) => cb() })

t.test('a version deposited while the old one is being repaired stays, bytes and record', async (t) => {
  const { primary, client, id } = await setup(t)
  const v2 = Buffer.from('version two, acknowledged during the repair')
  let deposited: unknown
  const committed = onRepairCommit(primary.store, async () => (deposited = await storeDeposit(primary.store, id, v2)))
  await t.rejects(client.retrieve('f', drain()), { code: 'HASH_MISMATCH' }, 'the rotten bytes are cut off')
  t.equal(await committed, undefined, 'the repair commit declined')
  t.equal(primary.store.stat(id, 'f'), deposited, 'the new record stands')
  t.equal(sha(await readFile(primary.store.layout.blob(id, sha(v2)))), sha(v2), "the new version's blob is intact")
  const chunks: Buffer[] = []
  await client.retrieve('f', new Writable({ write: (c: Buffer, _e, cb) => (chunks.push(c), cb()) }))
  t.equal(Buffer.concat(chunks).toString(), v2.toString(), 'a read gets the new version')
})

t.test('a file deleted while it is being repaired stays deleted', async (t) => {
  const { primary, client, id } = await setup(t)
  const committed = onRepairCommit(primary.store, () => primary.store.delete(id, 'f'))
  await t.rejects(client.retrieve('f', drain()), { code: 'HASH_MISMATCH' })
  t.equal(await committed, undefined)
  t.equal(primary.store.stat(id, 'f'), undefined, 'not resurrected')
  await t.rejects(client.retrieve('f', drain()), { code: 'NOT_FOUND' })
})
