// The cost a resumed upload pays before its first new byte (issue 11): Node cannot save a sha256 state, so the
// primary re-hashes the prefix it already holds. Times PartialUploads.resumeAt over a just-written 1 GiB partial
// (page cache warm: sha256's speed, the usual case for a cut noticed on a live server) against sha256 of the same
// bytes in memory, in this process. `BENCH_REHASH_MB` sets the size (default 1024).
import { createHash, randomUUID } from 'node:crypto'
import { mkdtemp, open, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { BlobStore } from '../dist/store/blob-store.js'
import { PartialUploads } from '../dist/store/partial-uploads.js'
import { positiveInt } from './util.js'

export async function rehashFigure() {
  const size = positiveInt('BENCH_REHASH_MB', 1024) * 2 ** 20
  const dir = await mkdtemp(join(tmpdir(), 'deposito-rehash-'))
  const store = await BlobStore.open(dir)
  const partials = await PartialUploads.open(store.layout, { ttlMs: 86_400_000, log: pino({ level: 'silent' }) })
  try {
    const owner = await store.issueClientId()
    const token = randomUUID()
    await partials.create(owner, token, 'big', size)
    const chunk = Buffer.alloc(8 * 2 ** 20, 'deposito')
    const handle = await open(join(dir, 'partials', owner, token), 'a')
    let inMemory = 0
    const memoryHash = createHash('sha256')
    for (let written = 0; written < size; written += chunk.length) {
      const piece = chunk.subarray(0, Math.min(chunk.length, size - written))
      await handle.write(piece)
      const t0 = process.hrtime.bigint()
      memoryHash.update(piece)
      inMemory += Number(process.hrtime.bigint() - t0) / 1e9
    }
    await handle.close()
    const started = process.hrtime.bigint()
    const hash = await partials.resumeAt(owner, token, size)
    const seconds = Number(process.hrtime.bigint() - started) / 1e9
    if (hash.digest('hex') !== memoryHash.digest('hex')) throw new Error('the re-hashed prefix does not match')
    return { size, seconds, inMemory }
  } finally {
    await partials.close()
    await store.close()
    await rm(dir, { recursive: true, force: true })
  }
}
