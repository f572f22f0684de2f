import { createHash, randomUUID } from 'node:crypto'
import { open } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import pino from 'pino'
import { BlobStore } from '../../lib/store/blob-store.js'
import { PartialUploads } from '../../lib/store/partial-uploads.js'

// A resume re-hashes the prefix it holds, in chunks, into one hash: checked here on 24 MiB (several read chunks).
// How long that takes for 1 GiB is a figure, not a test: `npm run bench` prints it (bench/rehash.js).

const SIZE = 24 * 2 ** 20 + 12345

t.test('re-hashing a partial prefix gives the hash of its bytes', async (t) => {
  const dir = t.testdir()
  const store = await BlobStore.open(dir)
  const partials = await PartialUploads.open(store.layout, { ttlMs: 86_400_000, log: pino({ level: 'silent' }) })
  t.teardown(async () => {
    await partials.close()
    await store.close()
  })
  const owner = await store.issueClientId()
  const token = randomUUID()
  await partials.create(owner, token, 'big', SIZE)
  const chunk = Buffer.alloc(8 * 2 ** 20, 'deposito')
  const expected = createHash('sha256')
  const handle = await open(join(dir, 'partials', owner, token), 'a')
  for (let written = 0; written < SIZE; written += chunk.length) {
    const piece = chunk.subarray(0, Math.min(chunk.length, SIZE - written))
    await handle.write(piece)
    expected.update(piece)
  }
  await handle.close()
  const hash = await partials.resumeAt(owner, token, SIZE)
  t.equal(hash.digest('hex'), expected.digest('hex'), 'the prefix hash is right')
})
