import { createHash } from 'node:crypto'
import { mkdir, rm } from 'node:fs/promises'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import t, { type Test } from 'tap'
import { checkCopy, Scrubber } from '../../lib/cluster/scrub.js'
import { BlobStore } from '../../lib/store/blob-store.js'
import { flipByte as rot } from '../helpers/store-files.js'

// The scrubber against a real store: bounded slices, round-robin over passes, and what counts as rot.

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')

async function put(store: BlobStore, owner: string, name: string, body: Buffer) {
  const upload = store.beginUpload()
  try {
    await pipeline(Readable.from([body]), upload.stream)
    return (await upload.commit(owner, name, { size: body.length, sha256: sha(body), replicas: 0 })).info
  } finally {
    await upload.discard()
  }
}

async function fourFiles(t: Test) {
  const store = await BlobStore.open(t.testdir())
  t.teardown(() => store.close())
  const owner = await store.issueClientId()
  const bodies = ['a', 'b', 'c', 'd'].map((n, i) => [n, Buffer.alloc(1000 + i, n)] as const)
  for (const [name, body] of bodies) await put(store, owner, name, body)
  return { store, owner, bodies }
}

t.test('each run checks a slice of about `budget` bytes, and successive runs cover every file in turn', async (t) => {
  const { store } = await fourFiles(t)
  const scrubber = new Scrubber(store)
  const first = await scrubber.run(1500)
  t.same([first.checked, first.bytes, first.bad], [2, 2001, []], 'two files reach the budget')
  const second = await scrubber.run(1500)
  t.same([second.checked, second.bytes], [2, 2005], 'the next run goes on with the other two')
  const third = await scrubber.run(1)
  t.same([third.checked, third.bytes], [1, 1000], 'then wraps round; a budget smaller than a file still checks it')
  const all = await scrubber.run(1e9)
  t.equal(all.checked, 4, 'a large budget checks each file once, not twice')
  t.same(await scrubber.run(0), { checked: 0, bytes: 0, bad: [] }, 'a budget of 0 checks nothing')
  t.equal((await scrubber.run(1e9, { stopped: () => true })).checked, 0, 'a stopped run checks nothing more')
})

t.test('a rotten byte or a missing blob is reported; everything else is not', async (t) => {
  const { store, owner, bodies } = await fourFiles(t)
  const [[, a], [, b]] = bodies
  await rot(store.layout.blob(owner, sha(a)), 500)
  await rm(store.layout.blob(owner, sha(b)))
  const { checked, bad } = await new Scrubber(store).run(1e9)
  t.equal(checked, 4)
  t.same(
    bad.map((f) => [f.owner, f.info.name]),
    [
      [owner, 'a'],
      [owner, 'b'],
    ],
    'the rotten and the missing copy',
  )
})

t.test('checkCopy: a copy replaced or deleted since it was listed is "gone", not bad', async (t) => {
  const { store, owner, bodies } = await fourFiles(t)
  const [, , [, c]] = bodies
  const infoA = store.stat(owner, 'a')!
  t.equal(await checkCopy(store, owner, infoA), 'good')
  await put(store, owner, 'a', Buffer.from('a newer version'))
  t.equal(await checkCopy(store, owner, infoA), 'gone', 'replaced: the listed version is no longer the name')
  const infoB = store.stat(owner, 'b')!
  await store.delete(owner, 'b')
  t.equal(await checkCopy(store, owner, infoB), 'gone', 'deleted')
  t.equal(await checkCopy(store, '0c1f6c8e-3f1e-4d5b-9b5e-2f8a7c6d5e4f', infoB), 'gone', 'an owner this node never knew')
  const infoC = store.stat(owner, 'c')!
  await rot(store.layout.blob(owner, sha(c)), 0)
  t.equal(await checkCopy(store, owner, infoC), 'bad')
})

t.test('an unreadable copy is reported as such and the slice moves past it', async (t) => {
  const { store, owner, bodies } = await fourFiles(t)
  const [, [, b]] = bodies
  // A directory where the blob should be: reading it fails with EISDIR, deterministically, even as root.
  const blob = store.layout.blob(owner, sha(b))
  await rm(blob)
  await mkdir(blob)
  const scrubber = new Scrubber(store)
  const first = await scrubber.run(1500)
  t.same([first.checked, first.bad.map((f) => f.info.name)], [2, ['b']], 'a and b checked; b is bad')
  t.match(first.bad[0]!.unreadable, /EISDIR|illegal operation on a directory/, 'with why it could not be read')
  const second = await scrubber.run(1500)
  t.same([second.checked, second.bad], [2, []], 'the next slice goes on with c and d: the cursor moved past b')
})

t.test('one run at a time: a second gets BUSY at once; a time limit ends a slice early', async (t) => {
  const { store } = await fourFiles(t)
  const scrubber = new Scrubber(store)
  const first = scrubber.run(1e9)
  t.ok(scrubber.running)
  await t.rejects(scrubber.run(1e9), { code: 'BUSY' }, 'the second is refused while the first runs')
  t.equal((await first).checked, 4, 'the first is not disturbed')
  t.notOk(scrubber.running)
  t.equal((await scrubber.run(1e9)).checked, 4, 'and a later run is accepted')
  t.equal((await scrubber.run(1e9, { maxMs: 0 })).checked, 0, 'no time left: nothing checked')
})
