import { createHash } from 'node:crypto'
import { execFile } from 'node:child_process'
import { mkdir, open, rm, writeFile } from 'node:fs/promises'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { promisify } from 'node:util'
import t, { type Test } from 'tap'
import { PeerAuth } from '../../lib/cluster/peer-auth.js'
import { PeerClient } from '../../lib/cluster/peer-client.js'
import type { DepositoServer } from '../../lib/server/server.js'
import { startServer } from '../helpers/server.js'

// A mirror's `scrub`: one slice at a time, and a slice that ends when the node stops. To hold a slice still
// without timing, the first blob is a FIFO: the scrubber's open blocks until the test opens the other end, so
// the test knows exactly when the slice is under way, and decides when it may go on.

const SECRET = Buffer.from('a test cluster secret, long enough')
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')

async function put(server: DepositoServer, owner: string, name: string, body: Buffer) {
  const upload = server.store.beginUpload()
  try {
    await pipeline(Readable.from([body]), upload.stream)
    await upload.commit(owner, name, { size: body.length, sha256: sha(body), replicas: 0 })
  } finally {
    await upload.discard()
  }
}

/** A mirror holding a, b, c whose blob of `a` is a FIFO; `enter` resolves once a scrub has opened it. */
async function heldMirror(t: Test) {
  // A mirror for real: scrub is served only by a mirror, and only when addressed to its node id.
  const primary = await startServer(t, { secret: SECRET, heartbeatIntervalMs: 60_000 })
  const mirror = await startServer(t, { secret: SECRET, heartbeatIntervalMs: 60_000, join: `127.0.0.1:${primary.address.port}` })
  const owner = await mirror.store.issueClientId()
  const a = Buffer.from('the held file')
  for (const [name, body] of [['a', a], ['b', Buffer.from('bee')], ['c', Buffer.from('sea')]] as const) await put(mirror, owner, name, body)
  const blob = mirror.store.layout.blob(owner, sha(a))
  await rm(blob)
  await promisify(execFile)('mkfifo', [blob])
  const at = `127.0.0.1:${mirror.address.port}`
  const peers = new PeerClient(new PeerAuth(SECRET), { resolve: () => at })
  return {
    mirror,
    scrub: () => peers.request(mirror.identity.id, { op: 'scrub', bytes: 1e9 }),
    // Opening the writing end waits for the reader: it resolves exactly when the scrubber is in file a.
    enter: () => open(blob, 'w'),
    a,
    // A plain file again, or the next slice would wait on the FIFO for ever.
    unhold: async () => {
      await rm(blob)
      await writeFile(blob, a)
    },
  }
}

t.test('a second scrub while one runs is answered BUSY at once; the first is not disturbed', async (t) => {
  const { scrub, enter, a, unhold } = await heldMirror(t)
  const first = scrub()
  const writer = await enter()
  await t.rejects(scrub(), { code: 'BUSY', message: /already under way/ })
  await writer.write(a)
  await writer.close()
  t.match(await first, { verificados: '3', removidos: '0' }, 'the first checks all three, a included')
  await unhold()
  t.match(await scrub(), { verificados: '3' }, 'once it is done, the next is served')
})

t.test('a node that is stopping ends its slice after the file under way', async (t) => {
  const { mirror, scrub, enter, a } = await heldMirror(t)
  const first = scrub()
  const writer = await enter()
  const closed = mirror.close(30_000)
  await writer.write(a)
  await writer.close()
  t.match(await first, { verificados: '1', removidos: '0' }, 'a is finished; b and c are left for another time')
  await closed
})

t.test('an unreadable copy on a mirror (a directory where its blob was) is dropped, and the reply still comes', async (t) => {
  // A mirror for real: scrub is served only by a mirror, and only when addressed to its node id.
  const primary = await startServer(t, { secret: SECRET, heartbeatIntervalMs: 60_000 })
  const mirror = await startServer(t, { secret: SECRET, heartbeatIntervalMs: 60_000, join: `127.0.0.1:${primary.address.port}` })
  const owner = await mirror.store.issueClientId()
  const body = Buffer.from('soon unreadable')
  await put(mirror, owner, 'x', body)
  await put(mirror, owner, 'y', Buffer.from('fine'))
  const blob = mirror.store.layout.blob(owner, sha(body))
  await rm(blob)
  await mkdir(blob)
  const peers = new PeerClient(new PeerAuth(SECRET), { resolve: () => `127.0.0.1:${mirror.address.port}` })
  const reply = await peers.request(mirror.identity.id, { op: 'scrub', bytes: 1e9 })
  t.match(reply, { verificados: '2', removidos: '1' })
  t.equal(mirror.store.stat(owner, 'x'), undefined, 'never served again')
  t.ok(mirror.store.stat(owner, 'y'), 'the good copy stays')
})
