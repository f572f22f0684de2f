// Helper for test/store/crash.test.ts, run as a child process and SIGKILLed mid-deposit. Plain ESM on purpose: it imports
// the compiled store from dist/ (built by `npm test`'s pretest or `npx tsc -p .`), since tap's TS loader only
// applies to the files tap itself runs.
//
// usage: node crash-writer.mjs DATA_DIR
// stdout: "committed\n" once version 1 of "doc" is committed, "writing\n" once version 2's bytes reach the temp
// file, and "committed2\n" should version 2 ever finish (the test kills us long before that).
import { createHash } from 'node:crypto'
import { pipeline } from 'node:stream/promises'
import { Readable } from 'node:stream'
import { BlobStore } from '../../dist/store/blob-store.js'

const V1 = Buffer.from('version 1 of doc\n'.repeat(1000))
const CHUNK = 64 * 1024
const TOTAL = 256 * 1024 * 1024

const dir = process.argv[2]
if (!dir) {
  process.stderr.write('usage: node crash-writer.mjs DATA_DIR\n')
  process.exitCode = 2
  process.exit()
}
const sha = (data) => createHash('sha256').update(data).digest('hex')

const store = await BlobStore.open(dir)
const id = await store.issueClientId()
const first = store.beginUpload()
await pipeline(Readable.from([V1]), first.stream)
await first.commit(id, 'doc', { size: V1.length, sha256: sha(V1), replicas: 1 })
process.stdout.write('committed\n')

const second = store.beginUpload()
const hash = createHash('sha256')
async function* version2() {
  let announced = false
  for (let sent = 0; sent < TOTAL; sent += CHUNK) {
    const chunk = Buffer.alloc(CHUNK, sent / CHUNK)
    hash.update(chunk)
    yield chunk
    if (!announced && second.stream.bytesWritten > 0) {
      announced = true
      process.stdout.write('writing\n')
    }
  }
}
await pipeline(Readable.from(version2()), second.stream)
await second.commit(id, 'doc', { size: TOTAL, sha256: hash.digest('hex'), replicas: 1 })
process.stdout.write('committed2\n')
