import t from 'tap'
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { readdir, rename, rm, stat, writeFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { BlobStore } from '../../lib/store/blob-store.js'

const WRITER = fileURLToPath(new URL('../helpers/crash-writer.mjs', import.meta.url))
const COMPILED = fileURLToPath(new URL('../../dist/store/blob-store.js', import.meta.url))
/** Must match V1 in crash-writer.mjs. */
const V1 = Buffer.from('version 1 of doc\n'.repeat(1000))

const sha = (data: Buffer): string => createHash('sha256').update(data).digest('hex')

async function deposit(store: BlobStore, owner: string, name: string, content: string | Buffer) {
  const data = Buffer.from(content)
  const upload = store.beginUpload()
  await pipeline(Readable.from([data]), upload.stream)
  return (await upload.commit(owner, name, { size: data.length, sha256: sha(data), replicas: 1 })).info
}

async function readBlob(store: BlobStore, owner: string, name: string): Promise<Buffer> {
  const { stream } = await store.openBlob(owner, name)
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

/** Resolves once the child has printed the line `line` (collected in `seen`); rejects if the process exits first. No timers: the event decides. */
function waitForLine(child: ReturnType<typeof spawn>, seen: string[], line: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (seen.join('').split('\n').includes(line)) {
        child.stdout!.off('data', check)
        child.off('exit', onExit)
        resolve()
      }
    }
    const onExit = (code: number | null, signal: string | null) =>
      reject(new Error(`writer exited (${code ?? signal}) before printing ${line}; output: ${seen.join('')}`))
    child.stdout!.on('data', check)
    child.once('exit', onExit)
    check()
  })
}

t.test('SIGKILL while a new version streams in leaves the old version intact', async (t) => {
  if (!existsSync(COMPILED)) {
    t.fail(`${COMPILED} is missing: run npx tsc -p . first`)
    return
  }
  const root = t.testdir()
  const child = spawn(process.execPath, [WRITER, root], { stdio: ['ignore', 'pipe', 'pipe'] })
  const out: string[] = []
  const err: string[] = []
  child.stdout.setEncoding('utf8').on('data', (d: string) => out.push(d))
  child.stderr.setEncoding('utf8').on('data', (d: string) => err.push(d))
  const exited = once(child, 'exit')
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })

  await waitForLine(child, out, 'committed')
  await waitForLine(child, out, 'writing')
  child.kill('SIGKILL')
  const [code, signal] = await exited
  t.equal(signal, 'SIGKILL', `killed, not finished (code ${code}, stderr ${err.join('')})`)
  t.notOk(out.join('').includes('committed2'), 'version 2 never committed')

  const leftovers = await readdir(join(root, 'tmp'))
  t.equal(leftovers.length, 1, 'the half-written temp is on disk before recovery')
  t.ok((await stat(join(root, 'tmp', leftovers[0]))).size > 0, 'and bytes had been flowing into it')

  const store = await BlobStore.open(root)
  const ids = await readdir(store.layout.clients)
  t.equal(ids.length, 1)
  const [id] = ids
  t.ok(store.hasClient(id))
  t.match(store.list(id), [{ name: 'doc', size: V1.length, sha256: sha(V1) }])
  t.equal(store.list(id).length, 1)
  const bytes = await readBlob(store, id, 'doc')
  t.ok(bytes.equals(V1), 'doc still reads as version 1, byte for byte')
  t.equal(sha(bytes), sha(V1))
  t.same(await readdir(store.layout.tmp), [], 'tmp/ is empty after open')
  t.same(await readdir(store.layout.blobs(id)), [sha(V1)], 'no orphan blob')
  t.equal((await readdir(store.layout.files(id))).length, 1)
})

/** Replaces clients/<id>/files by a regular file: renaming into it then fails with ENOTDIR, even as root. */
async function breakFilesDir(store: BlobStore, id: string): Promise<() => Promise<void>> {
  const files = store.layout.files(id)
  await rename(files, files + '.saved')
  await writeFile(files, 'not a directory')
  return async () => {
    await rm(files)
    await rename(files + '.saved', files)
  }
}

t.test('a failed metadata write keeps the old version and leaves no garbage after reopen', async (t) => {
  const root = t.testdir()
  const store = await BlobStore.open(root)
  const id = await store.issueClientId()
  const v1 = await deposit(store, id, 'doc', V1)
  const other = await deposit(store, id, 'other', 'unrelated')

  const restore = await breakFilesDir(store, id)
  const v2 = Buffer.from('version 2, never to be seen')
  const upload = store.beginUpload()
  await pipeline(Readable.from([v2]), upload.stream)
  await t.rejects(upload.commit(id, 'doc', { size: v2.length, sha256: sha(v2), replicas: 1 }), { code: 'ENOTDIR' },
    'the commit fails at the metadata write')
  await upload.discard()
  await t.rejects(deposit(store, id, 'fresh', 'new name'), { code: 'ENOTDIR' })

  t.same(store.stat(id, 'doc'), v1, 'the index still holds version 1')
  t.equal(store.stat(id, 'fresh'), undefined, 'a failed first commit creates no name')
  t.same(store.list(id).map((i) => i.name), ['doc', 'other'])
  t.ok((await readBlob(store, id, 'doc')).equals(V1), 'version 1 is still readable, intact')
  t.same(await readdir(store.layout.tmp), [], 'no metadata temp left in tmp/')
  t.ok((await readdir(store.layout.blobs(id))).includes(v1.sha256), 'the old blob was not dropped')

  await restore()
  const reopened = await BlobStore.open(root)
  t.same(reopened.list(id), [v1, other], 'a restart sees version 1')
  t.ok((await readBlob(reopened, id, 'doc')).equals(V1))
  t.same((await readdir(reopened.layout.blobs(id))).sort(), [v1.sha256, other.sha256].sort(), 'the stray new blobs are swept')
  t.same(await readdir(reopened.layout.tmp), [])
  t.equal((await readdir(reopened.layout.files(id))).length, 2)

  const v3 = await deposit(store, id, 'doc', 'version 3')
  t.same(store.stat(id, 'doc'), v3, 'the store that saw the failure still commits afterwards')
  t.equal((await readBlob(store, id, 'doc')).toString(), 'version 3')
})
