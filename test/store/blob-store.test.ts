import t from 'tap'
import { createHash, randomUUID } from 'node:crypto'
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join, relative, sep } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { BlobStore } from '../../lib/store/blob-store.js'

const sha = (data: Buffer): string => createHash('sha256').update(data).digest('hex')

async function deposit(store: BlobStore, owner: string, name: string, content: string | Buffer, replicas = 1) {
  const data = Buffer.from(content)
  const upload = store.beginUpload()
  await pipeline(Readable.from([data.subarray(0, 3), data.subarray(3)]), upload.stream)
  return (await upload.commit(owner, name, { size: data.length, sha256: sha(data), replicas })).info
}

async function readBlob(store: BlobStore, owner: string, name: string): Promise<Buffer> {
  const { stream } = await store.openBlob(owner, name)
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

const blobsOnDisk = async (store: BlobStore, id: string) => (await readdir(store.layout.blobs(id))).sort()
const tmpOnDisk = (store: BlobStore) => readdir(store.layout.tmp)
const indexedBlobs = (store: BlobStore, id: string) => [...new Set(store.list(id).map((i) => i.sha256))].sort()

t.test('issued ids are known, fresh and empty', async (t) => {
  const store = await BlobStore.open(t.testdir())
  const a = await store.issueClientId()
  const b = await store.issueClientId()
  t.match(a, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
  t.not(a, b)
  t.ok(store.hasClient(a))
  t.ok(store.hasClient(b))
  t.notOk(store.hasClient(randomUUID()))
  t.same(store.list(a), [])
  t.same((await readdir(store.layout.client(a))).sort(), ['blobs', 'files'])
  t.ok((await store.freeBytes()) > 0, 'freeBytes() is positive')
})

t.test('deposit, stat, list and openBlob return exactly what was stored', async (t) => {
  const store = await BlobStore.open(t.testdir())
  const id = await store.issueClientId()
  const bytes = Buffer.from([0, 1, 2, 255, 10, 13, 0x7c, ...Buffer.from('tail')])
  const info = await deposit(store, id, 'zeta.bin', bytes, 3)
  t.match(info, { name: 'zeta.bin', size: bytes.length, sha256: sha(bytes), replicas: 3 })
  t.ok(!Number.isNaN(Date.parse(info.storedAt)), 'storedAt is a date')
  await deposit(store, id, 'alpha.txt', 'alpha')
  await deposit(store, id, 'Mid', '')
  t.same(store.stat(id, 'zeta.bin'), info)
  t.equal(store.stat(id, 'nope'), undefined)
  t.same(store.list(id).map((i) => i.name), ['Mid', 'alpha.txt', 'zeta.bin'], 'sorted by name')
  t.same(await readBlob(store, id, 'zeta.bin'), bytes)
  t.same(await readBlob(store, id, 'Mid'), Buffer.alloc(0))
  const meta = JSON.parse(await readFile(store.layout.meta(id, 'zeta.bin'), 'utf8'))
  t.same(meta, info, 'the metadata file is the index entry')
  t.same(await tmpOnDisk(store), [], 'nothing left in tmp/')
  await t.rejects(store.openBlob(id, 'nope'), { code: 'NOT_FOUND' })
})

t.test('replacing a name swaps versions and drops the old blob', async (t) => {
  const store = await BlobStore.open(t.testdir())
  const id = await store.issueClientId()
  const v1 = await deposit(store, id, 'doc', 'version one')
  const v2 = await deposit(store, id, 'doc', 'version two')
  t.same(store.stat(id, 'doc'), v2)
  t.same((await readBlob(store, id, 'doc')).toString(), 'version two')
  t.same(await blobsOnDisk(store, id), [v2.sha256], 'old blob removed')
  t.not(v1.sha256, v2.sha256)
  const again = await deposit(store, id, 'doc', 'version two')
  t.equal(again.sha256, v2.sha256)
  t.same(await blobsOnDisk(store, id), [v2.sha256], 'same-content redeposit keeps the blob')
  t.same((await readBlob(store, id, 'doc')).toString(), 'version two')
})

t.test('names with identical content share one blob until the last goes', async (t) => {
  const store = await BlobStore.open(t.testdir())
  const id = await store.issueClientId()
  const a = await deposit(store, id, 'a', 'shared bytes')
  const b = await deposit(store, id, 'b', 'shared bytes')
  t.equal(a.sha256, b.sha256)
  t.same(await blobsOnDisk(store, id), [a.sha256], 'one blob file for two names')
  await deposit(store, id, 'a', 'a moved on')
  t.same((await readBlob(store, id, 'b')).toString(), 'shared bytes', 'replacing a keeps b intact')
  await deposit(store, id, 'a', 'shared bytes')
  t.same(await blobsOnDisk(store, id), [a.sha256], 'the moved-on blob is gone again')
  t.match(await store.delete(id, 'a'), { name: 'a', sha256: a.sha256 })
  t.same(await blobsOnDisk(store, id), [a.sha256], 'deleting one name keeps the shared blob')
  t.same((await readBlob(store, id, 'b')).toString(), 'shared bytes')
  await store.delete(id, 'b')
  t.same(await blobsOnDisk(store, id), [], 'deleting both removes it')
  t.same(await readdir(store.layout.files(id)), [])
  t.same(store.list(id), [])
})

t.test('a deleted name is gone everywhere', async (t) => {
  const store = await BlobStore.open(t.testdir())
  const id = await store.issueClientId()
  await deposit(store, id, 'gone', 'bye')
  await deposit(store, id, 'kept', 'hi')
  await store.delete(id, 'gone')
  t.equal(store.stat(id, 'gone'), undefined)
  t.same(store.list(id).map((i) => i.name), ['kept'])
  await t.rejects(store.openBlob(id, 'gone'), { code: 'NOT_FOUND' })
  await t.rejects(store.delete(id, 'gone'), { code: 'NOT_FOUND' })
  const reopened = await BlobStore.open(store.layout.root)
  t.equal(reopened.stat(id, 'gone'), undefined, 'the delete survived a restart')
})

t.test('bytes missing under a listed name are NOT_FOUND, not a crash', async (t) => {
  const store = await BlobStore.open(t.testdir())
  const id = await store.issueClientId()
  const info = await deposit(store, id, 'fragile', 'x')
  await rm(store.layout.blob(id, info.sha256))
  await t.rejects(store.openBlob(id, 'fragile'), { code: 'NOT_FOUND', message: /missing/ })
})

t.test('clients are isolated; unknown owners are UNKNOWN_CLIENT', async (t) => {
  const store = await BlobStore.open(t.testdir())
  const a = await store.issueClientId()
  const b = await store.issueClientId()
  await deposit(store, a, 'secret', 'for a only')
  t.same(store.list(b), [])
  t.equal(store.stat(b, 'secret'), undefined)
  await t.rejects(store.openBlob(b, 'secret'), { code: 'NOT_FOUND' })
  await t.rejects(store.delete(b, 'secret'), { code: 'NOT_FOUND' })
  t.same((await readBlob(store, a, 'secret')).toString(), 'for a only', 'A is untouched')
  await deposit(store, b, 'secret', 'for b')
  t.same((await readBlob(store, a, 'secret')).toString(), 'for a only', 'same name in B does not clobber A')
  for (const stranger of [randomUUID(), a.toUpperCase(), '../../etc', '', a + '/..']) {
    t.throws(() => store.list(stranger), { code: 'UNKNOWN_CLIENT' }, `list ${JSON.stringify(stranger)}`)
    t.throws(() => store.stat(stranger, 'secret'), { code: 'UNKNOWN_CLIENT' })
    await t.rejects(store.openBlob(stranger, 'secret'), { code: 'UNKNOWN_CLIENT' })
    await t.rejects(store.delete(stranger, 'secret'), { code: 'UNKNOWN_CLIENT' })
    const upload = store.beginUpload()
    await pipeline(Readable.from(['y']), upload.stream)
    await t.rejects(upload.commit(stranger, 'x', { size: 1, sha256: sha(Buffer.from('y')), replicas: 1 }), { code: 'UNKNOWN_CLIENT' })
    await upload.discard()
  }
  t.same(await tmpOnDisk(store), [], 'refused commits leave nothing once discarded')
  t.same(await blobsOnDisk(store, a), [sha(Buffer.from('for a only'))], 'and nothing reached A')
  t.notOk(store.hasClient('../../etc'))
})

t.test('hostile names never leave DATA/clients/<id>/', async (t) => {
  const dir = t.testdir({ data: {} })
  const root = join(dir, 'data')
  const store = await BlobStore.open(root)
  const id = await store.issueClientId()
  const names = ['../../etc/passwd', '../../../../../../tmp/evil', 'a/b', '/abs/path', '.', '..', 'line\nbreak', 'pi|pe',
    'nul\0byte', 'x'.repeat(1024), 'é'.repeat(512), '%2e%2e%2f', 'C:\\win\\path']
  for (const [i, name] of names.entries()) await deposit(store, id, name, `content ${i}`)
  t.same(store.list(id).map((i) => i.name), [...names].sort(), 'every name listed verbatim')
  for (const [i, name] of names.entries()) t.equal((await readBlob(store, id, name)).toString(), `content ${i}`)
  t.same(await readdir(dir), ['data'], 'nothing appeared beside the data dir')
  const clientDir = store.layout.client(id)
  const entries = await readdir(root, { recursive: true })
  t.ok(entries.length > 0)
  for (const entry of entries) {
    const full = join(root, entry)
    const rel = relative(clientDir, full)
    const inside = rel === '' || (!rel.startsWith('..') && !rel.startsWith(sep))
    t.ok(inside || ['tmp', 'clients', 'lock'].includes(entry), `${entry} is inside the client dir`)
    if (rel.startsWith(`files${sep}`)) t.match(rel.slice(6), /^[0-9a-f]{64}\.json$/)
    if (rel.startsWith(`blobs${sep}`)) t.match(rel.slice(6), /^[0-9a-f]{64}$/)
  }
  t.equal((await readdir(store.layout.files(id))).length, names.length)
})

t.test('a restarted store sees the same files and ids', async (t) => {
  const root = t.testdir()
  const store = await BlobStore.open(root)
  const a = await store.issueClientId()
  const b = await store.issueClientId()
  await deposit(store, a, 'one', '1')
  await deposit(store, a, 'two', '22')
  await deposit(store, b, 'three', '333')
  const reopened = await BlobStore.open(root)
  t.ok(reopened.hasClient(a) && reopened.hasClient(b))
  t.same(reopened.list(a), store.list(a))
  t.same(reopened.list(b), store.list(b))
  t.equal((await readBlob(reopened, b, 'three')).toString(), '333')
})

t.test('open() sweeps tmp/ leftovers, orphan blobs and foreign entries', async (t) => {
  const root = t.testdir()
  const store = await BlobStore.open(root)
  const id = await store.issueClientId()
  const kept = await deposit(store, id, 'kept', 'kept bytes')
  await writeFile(join(store.layout.tmp, 'abc.upload.part'), 'half an upload')
  await mkdir(join(store.layout.tmp, 'nested', 'deeper'), { recursive: true })
  await writeFile(join(store.layout.tmp, 'nested', 'deeper', 'f'), 'x')
  const orphan = sha(Buffer.from('nobody refers to me'))
  await writeFile(store.layout.blob(id, orphan), 'nobody refers to me')
  await writeFile(join(store.layout.clients, 'README'), 'not a client')
  const warnings: object[] = []
  const reopened = await BlobStore.open(root, { warn: (obj) => warnings.push(obj) })
  t.same(await tmpOnDisk(reopened), [], 'tmp/ emptied')
  t.same(await blobsOnDisk(reopened, id), [kept.sha256], 'orphan blob removed, used blob kept')
  t.equal((await readBlob(reopened, id, 'kept')).toString(), 'kept bytes')
  t.match(warnings, [{ entry: 'README' }], 'the foreign entry is reported, not fatal')
  t.notOk(reopened.hasClient('README'))
})

t.test('a corrupt .json is skipped, not fatal', async (t) => {
  const root = t.testdir()
  const store = await BlobStore.open(root)
  const id = await store.issueClientId()
  const good = await deposit(store, id, 'good', 'fine')
  const files = store.layout.files(id)
  await writeFile(join(files, 'a'.repeat(64) + '.json'), '{"name":"trunc')
  await writeFile(join(files, 'b'.repeat(64) + '.json'), '')
  await writeFile(join(files, 'c'.repeat(64) + '.json'), 'null\n')
  const warnings: object[] = []
  const reopened = await BlobStore.open(root, { warn: (obj) => warnings.push(obj) })
  t.same(reopened.list(id), [good])
  t.equal(warnings.length, 3, 'each bad file is reported')
  t.same(await blobsOnDisk(reopened, id), [good.sha256])
})

t.test('a .json that parses but is no FileInfo is skipped too', async (t) => {
  const root = t.testdir()
  const store = await BlobStore.open(root)
  const id = await store.issueClientId()
  const good = await deposit(store, id, 'good', 'fine')
  await writeFile(join(store.layout.files(id), 'd'.repeat(64) + '.json'), '{"hello":"world"}\n')
  const evil = { name: 'evil', size: 1, sha256: '../../../etc/passwd', replicas: 1, storedAt: 'x' }
  await writeFile(join(store.layout.files(id), 'e'.repeat(64) + '.json'), JSON.stringify(evil))
  const reopened = await BlobStore.open(root)
  t.same(reopened.list(id), [good], 'only the real entry is indexed')
  await t.rejects(reopened.openBlob(id, 'evil'), { code: 'NOT_FOUND' })
})

t.test('discard() after a failed pipeline leaves tmp/ empty', async (t) => {
  const store = await BlobStore.open(t.testdir())
  const failing = store.beginUpload()
  async function* source() {
    yield Buffer.alloc(64 * 1024, 1)
    throw new Error('client went away')
  }
  await t.rejects(pipeline(source(), failing.stream), { message: 'client went away' })
  await t.resolves(failing.discard(), 'discard() succeeds')
  t.ok(failing.stream.closed)
  t.same(await tmpOnDisk(store), [], 'no temp left behind')
})

t.test('discard() leaves tmp/ empty', async (t) => {
  const store = await BlobStore.open(t.testdir())
  const early = store.beginUpload()
  t.notOk(early.stream.closed)
  await early.discard()
  t.ok(early.stream.closed)
  t.same(await tmpOnDisk(store), [], 'when discarded before the stream opened')

  const halfway = store.beginUpload()
  await new Promise<void>((resolve, reject) => halfway.stream.write('some bytes', (err) => (err ? reject(err) : resolve())))
  t.equal((await tmpOnDisk(store)).length, 1, 'the temp exists mid-write')
  await halfway.discard()
  t.same(await tmpOnDisk(store), [], 'when discarded mid-write')

  const premature = store.beginUpload()
  await t.rejects(premature.commit(await store.issueClientId(), 'x', { size: 0, sha256: sha(Buffer.alloc(0)), replicas: 1 }), /before the upload stream closed/)
  await premature.discard()
  t.same(await tmpOnDisk(store), [])
})

t.test('concurrent commits of one name end with one consistent version', async (t) => {
  const store = await BlobStore.open(t.testdir())
  const id = await store.issueClientId()
  await deposit(store, id, 'other', 'content 3')
  const contents = Array.from({ length: 24 }, (_, i) => Buffer.from(`content ${i % 8}`.repeat(1000 + i)))
  const uploads = contents.map(() => store.beginUpload())
  await Promise.all(uploads.map((u, i) => pipeline(Readable.from([contents[i]]), u.stream)))
  const infos = await Promise.all(uploads.map((u, i) =>
    u.commit(id, 'race', { size: contents[i].length, sha256: sha(contents[i]), replicas: 1 }).then((c) => c.info)))
  const final = store.stat(id, 'race')
  t.ok(final && infos.some((i) => i.sha256 === final.sha256 && i.storedAt === final.storedAt), 'one of the commits won')
  const bytes = await readBlob(store, id, 'race')
  t.equal(sha(bytes), final!.sha256, 'the bytes match the winner')
  t.equal(bytes.length, final!.size)
  t.same(JSON.parse(await readFile(store.layout.meta(id, 'race'), 'utf8')), final, 'disk agrees with memory')
  t.same(await blobsOnDisk(store, id), indexedBlobs(store, id), 'no orphan blobs')
  t.same(await tmpOnDisk(store), [])
  const reopened = await BlobStore.open(store.layout.root)
  t.same(reopened.list(id), store.list(id))
})

t.test('a half-issued client (crash inside issueClientId) does not stop open()', async (t) => {
  const root = t.testdir()
  const store = await BlobStore.open(root)
  const id = await store.issueClientId()
  await rm(store.layout.blobs(id), { recursive: true })
  const reopened = await BlobStore.open(root)
  t.ok(reopened.hasClient(id))
  await t.resolves(deposit(reopened, id, 'after', 'ok'))
})

// A repair fetch reads the record, then spends a while on the network before committing; these are the
// interleavings the reviewer found losing data.
async function fetched(store: BlobStore, content: string) {
  const upload = store.beginUpload()
  await pipeline(Readable.from([Buffer.from(content)]), upload.stream)
  return upload
}

t.test('a repair commit puts the bytes back and leaves the record as it stands', async (t) => {
  const store = await BlobStore.open(t.testdir())
  const id = await store.issueClientId()
  const v1 = await deposit(store, id, 'f', 'version one', 2)
  await store.updateRecord(id, 'f', v1.sha256, { replicas: 2, mirrors: ['m1', 'm2'] })
  const record = store.stat(id, 'f')!
  await writeFile(store.layout.blob(id, v1.sha256), 'rotted bytes')
  const upload = await fetched(store, 'version one')
  const restored = await upload.commitRepair(id, 'f', v1.sha256)
  t.equal(restored, record, 'the current record is returned, not a rewritten one')
  t.equal(store.stat(id, 'f'), record, 'the record object is untouched')
  t.same(JSON.parse(await readFile(store.layout.meta(id, 'f'), 'utf8')), record, 'the metadata file too')
  t.equal((await readBlob(store, id, 'f')).toString(), 'version one')
  t.same(await tmpOnDisk(store), [])
  await upload.discard()
})

t.test('a repair commit after the name was replaced keeps the new version', async (t) => {
  const store = await BlobStore.open(t.testdir())
  const id = await store.issueClientId()
  const v1 = await deposit(store, id, 'f', 'version one')
  const upload = await fetched(store, 'version one')
  const v2 = await deposit(store, id, 'f', 'version two, deposited during the fetch')
  t.equal(await upload.commitRepair(id, 'f', v1.sha256), undefined, 'the caller is told the file changed')
  t.equal(store.stat(id, 'f'), v2, 'the new record stands')
  t.same(JSON.parse(await readFile(store.layout.meta(id, 'f'), 'utf8')), v2)
  t.equal((await readBlob(store, id, 'f')).toString(), 'version two, deposited during the fetch', 'its blob is still there')
  t.same(await blobsOnDisk(store, id), [v2.sha256], 'the old version is not reinstalled beside it')
  t.same(await tmpOnDisk(store), [], 'the fetched temp is gone')
  await upload.discard()
})

t.test('a repair commit after the name was deleted resurrects nothing', async (t) => {
  const store = await BlobStore.open(t.testdir())
  const id = await store.issueClientId()
  const v1 = await deposit(store, id, 'f', 'version one')
  const upload = await fetched(store, 'version one')
  await store.delete(id, 'f')
  t.equal(await upload.commitRepair(id, 'f', v1.sha256), undefined)
  t.equal(store.stat(id, 'f'), undefined, 'still deleted')
  t.same(await readdir(store.layout.files(id)), [], 'no metadata file came back')
  t.same(await blobsOnDisk(store, id), [], 'no blob came back')
  t.same(await tmpOnDisk(store), [])
  const premature = store.beginUpload()
  await t.rejects(premature.commitRepair(id, 'f', v1.sha256), /before the upload stream closed/)
  await premature.discard()
})
