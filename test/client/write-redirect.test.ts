import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import t from 'tap'
import { DepositoClient } from '../../lib/client/client.js'
import { IdentityFile } from '../../lib/client/identity.js'
import { parseAddress } from '../../lib/net/address.js'
import { startServer } from '../helpers/server.js'
import { FILE_FIELDS, NODE_A, NODE_B, abandoned, afterRequest, fakeNode, ops } from '../helpers/fake-node.js'

// Writes go to the primary only: through a mirror to the primary it names, and after a NOT_PRIMARY refusal to
// the primary the refusal names, once.
const ID = '0c1f6c8e-3f1e-4d5b-9b5e-2f8a7c6d5e4f'
// Long enough for a scripted node to answer on a loaded 2-core box; only frozen nodes ever wait it out.
const TIMEOUT_MS = 1_500
const client = (addresses: string[], extra: { id?: string; identity?: IdentityFile } = { id: ID }) =>
  new DepositoClient({ server: addresses.map(parseAddress), responseTimeoutMs: TIMEOUT_MS, ...extra })
const notPrimary = (to: string) => `status:error|code:NOT_PRIMARY|message:this node is a mirror; writes go to the primary at ${to}|primario:${to}\n`

t.test('a mirror that answers first: the delete goes to the primary it names, and only there', async (t) => {
  const primary = await fakeNode(t, { node: `no:${NODE_A}|papel:primario|cluster:${NODE_A}`, reply: afterRequest(`status:ok|${FILE_FIELDS}\n`) })
  const mirror = await fakeNode(t, { node: `no:${NODE_B}|papel:espelho|cluster:${NODE_A}|primario:${primary.address}` })
  t.match(await client([mirror.address]).delete('f'), { name: 'f' })
  t.same(ops(mirror), ['node'], 'the mirror was only asked who it is')
  t.same(ops(primary), ['node', 'delete'])
  t.match(primary.headers[1], `id_cliente:${ID}`)
})

t.test('a primary behind a mirror that does not answer: UNREACHABLE, saying where writes go', async (t) => {
  const frozen = await fakeNode(t, { node: null })
  const mirror = await fakeNode(t, { node: `no:${NODE_B}|papel:espelho|primario:${frozen.address}` })
  for (const write of [(c: DepositoClient) => c.delete('f'), (c: DepositoClient) => c.replicas('f', 1)]) {
    await t.rejects(write(client([frozen.address, mirror.address])), {
      code: 'UNREACHABLE',
      message: `writes go to the primary at ${frozen.address}, which does not answer; mirror ${mirror.address} takes no writes`,
    })
  }
  await t.rejects(client([mirror.address]).delete('f'), { code: 'UNREACHABLE' }, 'found silent by following the pointer, too')
  t.same(ops(mirror), ['node', 'node', 'node'], 'no write ever reached the mirror')
  for (const socket of frozen.sockets) await abandoned(socket)
  t.equal(frozen.sockets.length, 3, 'probed once per command: twice as listed, once as followed')
})

t.test('a NOT_PRIMARY refusal is followed once, not twice', async (t) => {
  const third = await fakeNode(t, { node: 'papel:primario', reply: afterRequest(`status:ok|${FILE_FIELDS}\n`) })
  const second = await fakeNode(t, { node: 'papel:primario', reply: afterRequest(notPrimary(third.address)) })
  const first = await fakeNode(t, { node: 'papel:primario', reply: afterRequest(notPrimary(second.address)) })
  const err = await client([first.address]).delete('f').catch((e: unknown) => e)
  t.match(err, { code: 'NOT_PRIMARY', details: { primary: third.address } }, 'the second refusal is the answer')
  t.same(ops(first), ['node', 'delete'])
  t.same(ops(second), ['node', 'delete'], 'the pointer was followed once')
  t.same(third.headers, [], 'and no further')

  t.match(await client([second.address]).replicas('f', 0), { name: 'f', copies: 1 }, 'one hop to a real primary succeeds')
  t.same(ops(third), ['node', 'replicas'])
})

t.test('a piped deposit refused with NOT_PRIMARY fails: its bytes are gone', async (t) => {
  const primary = await fakeNode(t, { node: 'papel:primario', reply: afterRequest(`status:ok|${FILE_FIELDS}\n`) })
  const moved = await fakeNode(t, { node: 'papel:primario', reply: (_h, s) => s.end(notPrimary(primary.address)) })
  await t.rejects(client([moved.address]).deposit(Readable.from([Buffer.from('piped')]), { name: 'p' }), {
    code: 'NOT_PRIMARY',
    details: { primary: primary.address },
  })
  t.same(primary.headers, [], 'nothing was sent to the primary')
})

t.test('a deposit from a regular file is sent again, whole, to the primary the refusal names', async (t) => {
  const dir = t.testdir()
  const path = join(dir, 'doc.txt')
  const data = Buffer.from('a document worth keeping\n'.repeat(1000))
  await writeFile(path, data)
  const server = await startServer(t, { dataDir: join(dir, 'data') })
  const real = `127.0.0.1:${server.address.port}`
  const moved = await fakeNode(t, { node: 'papel:primario', reply: (_h, s) => s.end(notPrimary(real)) })
  const identity = new IdentityFile(join(dir, 'home'))
  // The id comes from the real primary too: only a primary issues ids.
  const c = client([moved.address], { identity })
  const id = await c.id()
  t.same(ops(moved), ['node', 'hello'], 'the hello was refused there')
  t.equal(await identity.get(moved.address), id, 'and the id saved under the listed address (no cluster named)')
  let reopened = 0
  const done = await c.deposit(createReadStream(path), {
    name: 'doc.txt',
    size: data.length,
    reopen: () => (reopened++, createReadStream(path)),
  })
  t.equal(reopened, 1)
  t.match(done, { name: 'doc.txt', size: data.length, sha256: createHash('sha256').update(data).digest('hex') })
  t.equal(server.store.stat(id, 'doc.txt')?.size, data.length, 'stored on the primary')
})

t.test('a new id is issued by the primary a mirror names, never by the mirror', async (t) => {
  const issued = '9b2d4f1a-7c3e-4a5b-8d6f-1e2a3b4c5d6e'
  const primary = await fakeNode(t, { node: `no:${NODE_A}|papel:primario|cluster:${NODE_A}`, reply: afterRequest(`status:ok|id_cliente:${issued}|novo:1\n`) })
  const mirror = await fakeNode(t, { node: `no:${NODE_B}|papel:espelho|cluster:${NODE_A}|primario:${primary.address}` })
  const identity = new IdentityFile(t.testdir())
  t.equal(await client([mirror.address], { identity }).id(), issued)
  t.same(ops(mirror), ['node'])
  t.same(ops(primary), ['node', 'hello'])
  t.equal(await identity.get(`cluster:${NODE_A}`), issued, 'saved under the cluster')
})
