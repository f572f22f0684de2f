import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import pino from 'pino'
import t, { type Test } from 'tap'
import { PeerAuth } from '../../lib/cluster/peer-auth.js'
import { PeerClient } from '../../lib/cluster/peer-client.js'
import { reconcileMirror, scrubMirror } from '../../lib/cluster/reconcile.js'
import { encodeFields } from '../../lib/protocol/fields.js'
import { BlobStore } from '../../lib/store/blob-store.js'
import { listen } from '../helpers/fake-server.js'
import { sealedReply } from '../helpers/peer-reply.js'

// reconcileMirror against a fake mirror that lists what it holds: which records lose the mirror, and a list
// that is cut short changes nothing.

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')
const SECRET = Buffer.from('a test cluster secret, long enough')
const peers = new PeerClient(new PeerAuth(SECRET), { idleTimeoutMs: 5_000 })
const log = pino({ level: 'silent' })

async function primaryStore(t: Test, mirror: string) {
  const store = await BlobStore.open(t.testdir())
  t.teardown(() => store.close())
  const owner = await store.issueClientId()
  for (const [name, mirrors] of [
    ['kept', [mirror, 'other:1']],
    ['lost', [mirror, 'other:1']],
    ['elsewhere', ['other:1']],
  ] as const) {
    const body = Buffer.from(`bytes of ${name}`)
    const upload = store.beginUpload()
    await pipeline(Readable.from([body]), upload.stream)
    await upload.commit(owner, name, { size: body.length, sha256: sha(body), replicas: 2, mirrors: [...mirrors] })
    await upload.discard()
  }
  return { store, owner }
}

/** A mirror that answers `holdings` with `count` and these lines, recording the request line it got. */
async function fakeMirror(t: Test, reply: (lines: string[]) => string) {
  const requests: string[] = []
  const auth = new PeerAuth(SECRET)
  const { port } = await listen(t, (socket) => {
    socket.once('data', (d: Buffer) => {
      requests.push(d.toString())
      socket.end(sealedReply(auth, d.toString(), reply(requests)))
    })
  })
  return { address: `127.0.0.1:${port}`, requests }
}

t.test('a copy the mirror does not list comes off its record; other copies and other records stay', async (t) => {
  let address = ''
  let owner = ''
  let store!: BlobStore
  const mirror = await fakeMirror(t, () => {
    const held = ['kept', 'elsewhere', 'unknown to the primary'].map((name) =>
      encodeFields({ id_cliente: owner, nome_arquivo: name, hash_arquivo: sha(Buffer.from(`bytes of ${name}`)) }),
    )
    // "lost" listed with another version's hash does not count as holding this one.
    held.push(encodeFields({ id_cliente: owner, nome_arquivo: 'lost', hash_arquivo: '0'.repeat(64) }))
    return `status:ok|quantidade:${held.length}\n${held.join('')}`
  })
  address = mirror.address
  ;({ store, owner } = await primaryStore(t, address))
  t.equal(await reconcileMirror({ store, peers, log }, address), 1, 'one record corrected')
  t.same(store.stat(owner, 'lost')?.mirrors, ['other:1'], 'lost: the mirror is off its record')
  t.same(store.stat(owner, 'kept')?.mirrors, [address, 'other:1'], 'kept: unchanged')
  t.same(store.stat(owner, 'elsewhere')?.mirrors, ['other:1'], 'a record not naming the mirror: unchanged')
  t.equal(store.list(owner).length, 3, 'nothing the primary does not know was added or removed')
  t.match(mirror.requests[0], /^op:holdings\|ts:\d+\|nonce:[0-9a-f]{32}\|auth:[0-9a-f]{64}\n$/, 'a signed holdings request')
})

t.test('a list shorter than announced changes nothing', async (t) => {
  const mirror = await fakeMirror(t, () => 'status:ok|quantidade:3\n')
  const { store, owner } = await primaryStore(t, mirror.address)
  await t.rejects(reconcileMirror({ store, peers, log }, mirror.address), { code: 'PROTOCOL_ERROR' })
  t.same(store.stat(owner, 'lost')?.mirrors, [mirror.address, 'other:1'], 'no record touched')
})

t.test('scrubMirror asks for a slice and reads the figures back', async (t) => {
  const mirror = await fakeMirror(t, () => 'status:ok|verificados:7|removidos:1\n')
  t.same(await scrubMirror(peers, mirror.address, 12345), { checked: 7, dropped: 1 })
  t.match(mirror.requests[0], /^op:scrub\|bytes:12345\|ts:\d+\|nonce:[0-9a-f]{32}\|auth:/)
})

t.test('a reply without quantidade, or with lines missing fields, is handled', async (t) => {
  const bare = await fakeMirror(t, () => 'status:ok\n')
  const { store, owner } = await primaryStore(t, bare.address)
  await t.rejects(reconcileMirror({ store, peers, log }, bare.address), { code: 'BAD_HEADER' }, 'no count: refused')
  t.same(store.stat(owner, 'kept')?.mirrors, [bare.address, 'other:1'], 'and nothing is touched')
})

t.test('a line without an owner or a hash holds nothing', async (t) => {
  const odd = await fakeMirror(t, () => 'status:ok|quantidade:1\nnome_arquivo:kept\n')
  const { store, owner } = await primaryStore(t, odd.address)
  t.equal(await reconcileMirror({ store, peers, log }, odd.address), 2, 'both records naming the mirror are corrected')
  t.same(store.stat(owner, 'kept')?.mirrors, ['other:1'])
})
