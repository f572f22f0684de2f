import { createHash } from 'node:crypto'
import { readdir, readFile } from 'node:fs/promises'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import t, { type Test } from 'tap'
import type { FileInfo } from '../../lib/protocol/replies.js'
import { BlobStore } from '../../lib/store/blob-store.js'
import type { CommitHooks } from '../../lib/store/file-record.js'

// What a commit supersedes and what a conditional delete removes: the store's half of "nothing is forgotten
// before it is remembered" (the server's half: test/server/deposit-race.test.ts, delete-order.test.ts).

const sha = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex')

async function commit(store: BlobStore, owner: string, content: string, hooks?: CommitHooks) {
  const upload = store.beginUpload()
  try {
    await pipeline(Readable.from([Buffer.from(content)]), upload.stream)
    return await upload.commit(owner, 'doc', { size: content.length, sha256: sha(content), replicas: 1, mirrors: ['m:1'] }, hooks)
  } finally {
    await upload.discard()
  }
}

async function open(t: Test) {
  const store = await BlobStore.open(t.testdir())
  t.teardown(() => store.close())
  return { store, id: await store.issueClientId() }
}

t.test('a commit returns the record it superseded, the one in place when it committed', async (t) => {
  const { store, id } = await open(t)
  const first = await commit(store, id, 'one')
  t.equal(first.replaced, undefined, 'nothing before the first')
  const second = await commit(store, id, 'two')
  t.equal(second.replaced, first.info, 'the second replaced the first')
  t.same(store.stat(id, 'doc'), second.info)
})

t.test('beforeReplace sees the old record while it is still the committed one, and is not called for a new name', async (t) => {
  const { store, id } = await open(t)
  const calls: FileInfo[] = []
  await commit(store, id, 'one', { beforeReplace: async (old) => void calls.push(old) })
  t.same(calls, [], 'no call: nothing is replaced')
  const first = store.stat(id, 'doc')!
  const onDisk: string[] = []
  await commit(store, id, 'two', {
    beforeReplace: async (old) => {
      calls.push(old)
      onDisk.push(JSON.parse(await readFile(store.layout.meta(id, 'doc'), 'utf8')).sha256)
    },
  })
  t.same(calls, [first])
  t.same(onDisk, [sha('one')], 'the record on disk still held the old version')
})

t.test('a beforeReplace that fails commits nothing', async (t) => {
  const { store, id } = await open(t)
  const { info } = await commit(store, id, 'one')
  await t.rejects(commit(store, id, 'two', { beforeReplace: () => Promise.reject(new Error('ENOSPC: tombstones')) }), /ENOSPC/)
  t.equal(store.stat(id, 'doc'), info, 'the old version stands')
  t.same(await readdir(store.layout.blobs(id)), [sha('one')], 'no blob of the refused version')
})

t.test('deleteRecordIf removes only the very record read, not one rewritten since', async (t) => {
  const { store, id } = await open(t)
  const { info } = await commit(store, id, 'one')
  const rewritten = await store.updateRecord(id, 'doc', info.sha256, { replicas: 2, mirrors: ['m:1', 'm:2'] })
  t.equal(await store.deleteRecordIf(id, info), false, 'the record gained a copy since it was read: kept')
  t.equal(store.stat(id, 'doc'), rewritten)
  t.equal(await store.deleteRecordIf(id, rewritten!), true)
  t.equal(store.stat(id, 'doc'), undefined)
  t.same(await readdir(store.layout.blobs(id)), [], 'its blob went with it')
  t.equal(await store.deleteRecordIf(id, rewritten!), false, 'gone already')
})
