import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import t from 'tap'
import { DepositoError } from '../../lib/protocol/errors.js'
import type { UploadCommitter } from '../../lib/store/upload.js'
import { PartialSink } from '../../lib/store/partial-sink.js'

// What each end of a resumable deposit leaves of its partial upload.

const committer = (commitUpload: UploadCommitter['commitUpload']): UploadCommitter => ({
  commitUpload,
  commitRepair: () => Promise.reject(new Error('not used')),
})
const unused = committer(() => Promise.reject(new Error('not used')))

async function partial(dir: string, store = unused) {
  const data = join(dir, 'p')
  const meta = join(dir, 'p.json')
  await writeFile(data, 'prefix ')
  await writeFile(meta, '{}')
  const sink = new PartialSink(store, data, meta)
  return { data, meta, sink }
}

t.test('a cut keeps the bytes (prefix and what arrived) and the record', async (t) => {
  const { data, meta, sink } = await partial(t.testdir())
  const cut = new DepositoError('CONNECTION_LOST', 'gone')
  await t.rejects(pipeline(Readable.from([Buffer.from('and more')]), sink.stream, { signal: AbortSignal.abort(cut) }))
  await sink.discard(cut)
  t.match(await readFile(data, 'utf8'), /^prefix /)
  t.equal(await readFile(meta, 'utf8'), '{}')
})

t.test('a hash mismatch deletes the partial', async (t) => {
  const { data, meta, sink } = await partial(t.testdir())
  await pipeline(Readable.from([Buffer.from('x')]), sink.stream)
  await sink.discard(new DepositoError('HASH_MISMATCH', 'bad'))
  await t.rejects(readFile(data), { code: 'ENOENT' })
  await t.rejects(readFile(meta), { code: 'ENOENT' })
})

t.test('committed: the record goes and discard leaves the blob alone', async (t) => {
  const dir = t.testdir()
  const blob = join(dir, 'blob')
  const { meta, sink } = await partial(dir, committer(async (temp) => {
    await rename(temp, blob)
    return { info: { name: 'n', size: 8, sha256: 'a'.repeat(64), replicas: 0, storedAt: '' } }
  }))
  await t.rejects(sink.commit('o', 'n', { size: 8, sha256: 'a'.repeat(64), replicas: 0 }), /before the upload stream closed/)
  await pipeline(Readable.from([Buffer.from('!')]), sink.stream)
  await sink.commit('o', 'n', { size: 8, sha256: 'a'.repeat(64), replicas: 0 })
  await sink.discard()
  t.equal(await readFile(blob, 'utf8'), 'prefix !')
  await t.rejects(readFile(meta), { code: 'ENOENT' })
})

t.test('a commit that moved the bytes and then failed: nothing left to keep, no error', async (t) => {
  const dir = t.testdir()
  const { sink } = await partial(dir, committer(async (temp) => {
    await rename(temp, join(dir, 'moved'))
    throw new Error('record write failed')
  }))
  await pipeline(Readable.from([Buffer.from('!')]), sink.stream)
  const err = await sink.commit('o', 'n', { size: 8, sha256: 'a'.repeat(64), replicas: 0 }).catch((e: unknown) => e)
  await t.resolves(sink.discard(err))
})

t.test('a partial that cannot be flushed reports why', async (t) => {
  const dir = t.testdir()
  const data = join(dir, 'd')
  await mkdir(data)
  const sink = new PartialSink(unused, data, join(dir, 'd.json'))
  await t.rejects(sink.discard(new Error('cut')), { code: 'EISDIR' })
})
