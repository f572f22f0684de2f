import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import pino from 'pino'
import t from 'tap'
import { fetchFromMirrors, repairUnderWay } from '../../lib/cluster/fetch-copy.js'
import { BlobStore } from '../../lib/store/blob-store.js'

// The scrub and a read may both want the same version repaired: one fetch serves both. (The fetch itself, end to
// end: test/server/repair-race.test.ts and test/cluster/self-repair.test.ts.)

t.test('concurrent repairs of one version share one fetch; another version gets its own', async (t) => {
  const store = await BlobStore.open(t.testdir())
  t.teardown(() => store.close())
  const owner = await store.issueClientId()
  const body = Buffer.from('a file')
  const upload = store.beginUpload()
  await pipeline(Readable.from([body]), upload.stream)
  const { info } = await upload.commit(owner, 'f', { size: body.length, sha256: createHash('sha256').update(body).digest('hex'), replicas: 0 })
  const log = pino({ level: 'silent' })
  const NO_MIRRORS = { live: () => [], resolve: (node: string) => node }
  t.equal(repairUnderWay(store, owner, info), undefined, 'none before')
  const first = fetchFromMirrors(store, NO_MIRRORS, owner, info, log)
  t.equal(fetchFromMirrors(store, NO_MIRRORS, owner, info, log), first, 'the second asker joins the first')
  t.equal(repairUnderWay(store, owner, info), first, 'a reader can wait for it')
  const other = fetchFromMirrors(store, NO_MIRRORS, owner, { ...info, sha256: '0'.repeat(64) }, log)
  t.not(other, first, 'a different version is a different repair')
  t.equal(await first, false, 'no mirror, no copy')
  await other
  t.equal(repairUnderWay(store, owner, info), undefined, 'forgotten once done')
})
