import { createHash, randomUUID } from 'node:crypto'
import { mkdir, readdir, readFile, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { BlobStore } from '../../lib/store/blob-store.js'
import { PartialUploads } from '../../lib/store/partial-uploads.js'
import { startServer } from '../helpers/server.js'
import { captureLog } from '../helpers/in-process-cluster.js'

// The partial-upload store on its own: records, claims, expiry by the last byte, and what the store ignores.

const DAY = 86_400_000

async function open(t: Test, ttlMs = DAY) {
  const dir = t.testdir()
  const store = await BlobStore.open(dir)
  const { log, lines } = captureLog()
  const partials = await PartialUploads.open(store.layout, { ttlMs, log })
  t.teardown(async () => {
    await partials.close()
    await store.close()
  })
  const owner = await store.issueClientId()
  return { dir, store, partials, owner, lines }
}

async function write(partials: PartialUploads, dir: string, owner: string, token: string, bytes: Buffer): Promise<string> {
  await partials.create(owner, token, 'f', 100)
  const path = join(dir, 'partials', owner, token)
  await writeFile(path, bytes)
  return path
}

t.test('create, get, resumeAt: the length on disk, the record, the prefix hash', async (t) => {
  const { dir, partials, owner } = await open(t)
  const token = randomUUID()
  t.equal(await partials.get(owner, token), undefined, 'none yet')
  await write(partials, dir, owner, token, Buffer.from('0123456789'))
  const state = await partials.get(owner, token)
  t.match(state, { length: 10, record: { name: 'f', size: 100, owner } })
  const hash = await partials.resumeAt(owner, token, 4)
  t.equal(hash.digest('hex'), createHash('sha256').update('0123').digest('hex'), 'the hash of the bytes kept')
  t.equal((await partials.get(owner, token))?.length, 4, 'cut to the offset')
  t.equal((await partials.resumeAt(owner, token, 0)).digest('hex'), createHash('sha256').digest('hex'), 'from 0: an empty prefix')
  t.equal(await partials.get(randomUUID(), token), undefined, 'another owner finds nothing')
})

t.test('a record that names another owner is not believed', async (t) => {
  const { dir, partials, owner } = await open(t)
  const token = randomUUID()
  await write(partials, dir, owner, token, Buffer.from('x'))
  const meta = join(dir, 'partials', owner, `${token}.json`)
  await writeFile(meta, JSON.stringify({ name: 'f', size: 100, owner: randomUUID(), createdAt: '' }))
  t.equal(await partials.get(owner, token), undefined)
  await writeFile(meta, '{not json')
  await t.rejects(partials.get(owner, token), SyntaxError, 'an unreadable record is an error, not a missing partial')
})

t.test('claims: one holder per token and owner; released, it can be claimed again', async (t) => {
  const { partials, owner } = await open(t)
  const token = randomUUID()
  const release = partials.claim(owner, token)
  t.throws(() => partials.claim(owner, token), { code: 'BUSY', message: /being written by another connection/ })
  t.throws(() => partials.checkFree(owner, token), { code: 'BUSY' })
  t.doesNotThrow(() => partials.claim(randomUUID(), token)(), 'the same token of another owner is another partial')
  release()
  t.doesNotThrow(() => partials.checkFree(owner, token))
  partials.claim(owner, token)()
})

t.test('expiry counts from the last byte: old partials go, recently written ones and claimed ones stay', async (t) => {
  const { dir, partials, owner, lines } = await open(t, 60_000)
  const old = randomUUID()
  const recent = randomUUID()
  const held = randomUUID()
  const orphan = randomUUID()
  const oldPath = await write(partials, dir, owner, old, Buffer.from('old'))
  const recentPath = await write(partials, dir, owner, recent, Buffer.from('recent'))
  const heldPath = await write(partials, dir, owner, held, Buffer.from('held'))
  const long = new Date(Date.now() - 3_600_000)
  // Created long ago, but its last byte is fresh: the record's age does not count.
  await utimes(join(dir, 'partials', owner, `${recent}.json`), long, long)
  for (const p of [oldPath, heldPath]) await utimes(p, long, long)
  // A record whose data never came (a crash inside create) ages by itself.
  const orphanMeta = join(dir, 'partials', owner, `${orphan}.json`)
  await writeFile(orphanMeta, '{}')
  await utimes(orphanMeta, long, long)
  const release = partials.claim(owner, held)
  t.equal(await partials.sweep(), 2, 'the old partial and the orphan record')
  release()
  const left = (await readdir(join(dir, 'partials', owner))).sort()
  t.same(left, [held, `${held}.json`, recent, `${recent}.json`].sort())
  t.ok(await readFile(recentPath), 'the recent partial is intact')
  t.ok(lines.some((l) => l.msg === 'partial upload expired'), 'logged')
  t.notOk(JSON.stringify(lines).includes(owner), 'the log names the owner by tag only')
  t.equal(await partials.sweep(), 1, 'the held one goes once released')
})

t.test('a sweep runs at start and on its timer', async (t) => {
  const dir = t.testdir()
  const store = await BlobStore.open(dir)
  t.teardown(() => store.close())
  const owner = await store.issueClientId()
  const token = randomUUID()
  await mkdir(join(dir, 'partials', owner), { recursive: true })
  await writeFile(join(dir, 'partials', owner, token), 'x')
  const long = new Date(Date.now() - 10_000)
  await utimes(join(dir, 'partials', owner, token), long, long)
  const { log, waitFor } = captureLog()
  const partials = await PartialUploads.open(store.layout, { ttlMs: 5_000, log })
  t.teardown(() => partials.close())
  t.same(await readdir(join(dir, 'partials', owner)), [], 'swept at start')
  await writeFile(join(dir, 'partials', owner, token), 'y')
  await utimes(join(dir, 'partials', owner, token), long, long)
  // The timer runs every ttl/4 = 1.25 s.
  await waitFor('the timed sweep', (e) => e.msg === 'partial upload expired', 2)
  t.same(await readdir(join(dir, 'partials', owner)), [])
})

t.test('a sweep that cannot remove a partial logs and goes on; a stray file in partials/ is skipped', async (t) => {
  const { dir, partials, owner, lines } = await open(t, 60_000)
  await writeFile(join(dir, 'partials', 'stray'), 'not a dir')
  const token = randomUUID()
  await write(partials, dir, owner, token, Buffer.from('x'))
  // A directory where the data file should be: rm without recursive fails.
  await mkdir(join(dir, 'partials', owner, randomUUID()))
  t.equal(await partials.sweep(Date.now() + 120_000), 1, 'the other partial still went')
  t.ok(lines.some((l) => l.msg === 'could not sweep a partial upload'))
})

t.test("the store's start-up sweep and garbage collection leave partials alone; a server lists none", async (t) => {
  const dir = t.testdir()
  const first = await startServer(t, { dataDir: dir })
  const owner = await first.store.issueClientId()
  const token = randomUUID()
  await mkdir(join(dir, 'partials', owner), { recursive: true })
  await writeFile(join(dir, 'partials', owner, token), 'kept')
  await first.close(0)
  const second = await startServer(t, { dataDir: dir })
  t.equal(await readFile(join(dir, 'partials', owner, token), 'utf8'), 'kept')
  t.same(second.store.list(owner), [])
  t.same(second.store.usage(), { files: 0, bytes: 0 })
})
