import { createHash } from 'node:crypto'
import { PassThrough } from 'node:stream'
import t from 'tap'
import { DepositoClient } from '../../lib/client/client.js'
import { parseAddress } from '../../lib/net/address.js'
import { FILE_FIELDS, NODE_A, NODE_B, abandoned, afterRequest, fakeNode, ops } from '../helpers/fake-node.js'

// Reads go to the primary when it answers; a mirror serves them only when it does not, and says so.
const ID = '0c1f6c8e-3f1e-4d5b-9b5e-2f8a7c6d5e4f'
const client = (...addresses: string[]) => new DepositoClient({ server: addresses.map(parseAddress), responseTimeoutMs: 1_500, id: ID })
const BYTES = Buffer.from('from the mirror')
const sha = createHash('sha256').update(BYTES).digest('hex')
const stored = `nome_arquivo:f|tamanho_arquivo:${BYTES.length}|hash_arquivo:${sha}|qtd_replicas:1|data:2024-01-01T00:00:00.000Z`

/** A mirror of the primary at `primary` holding one file; and status/list/retrieve answers for it. */
async function mirrorOf(t: Parameters<typeof fakeNode>[0], primary: string) {
  return fakeNode(t, {
    node: `no:${NODE_B}|papel:espelho|cluster:${NODE_A}|primario:${primary}`,
    reply: (header, s) => {
      const op = /^op:([a-z]+)/.exec(header)![1]
      const reply =
        op === 'list' ? `status:ok|quantidade:1\n${stored}\n` : op === 'status' ? 'status:ok|nos:1|sub_replicados:0\nendereco:m|papel:espelho|estado:up\n' : `status:ok|${stored}\n${BYTES}`
      afterRequest(reply)(header, s)
    },
  })
}

t.test('a primary that accepts and never answers: list, retrieve and status come from the mirror', async (t) => {
  const frozen = await fakeNode(t, { node: null })
  const mirror = await mirrorOf(t, frozen.address)
  const c = client(frozen.address, mirror.address)
  t.equal(c.lastRead, undefined, 'nothing read yet')
  t.same((await c.list()).map((f) => f.name), ['f'])
  const origin = { servedBy: { address: mirror.address, node: NODE_B, role: 'mirror' }, missedPrimary: frozen.address }
  t.same(c.lastRead, origin)
  const sink = new PassThrough()
  const parts: Buffer[] = []
  sink.on('data', (d: Buffer) => parts.push(d))
  t.match(await c.retrieve('f', sink), { sha256: sha })
  t.same(Buffer.concat(parts), BYTES)
  t.same(c.lastRead, origin)
  t.match(await c.status(), { nodes: [{ role: 'mirror' }] })
  t.same(ops(mirror), ['node', 'list', 'node', 'retrieve', 'node', 'status'])
  t.equal(frozen.sockets.length, 3, 'one probe of the primary per read, none a second time via the mirror\'s pointer')
  for (const socket of frozen.sockets) await abandoned(socket)
  t.pass('and each was abandoned')
})

t.test('a mirror listed first: the read still goes to the primary when it answers', async (t) => {
  const primary = await fakeNode(t, { node: `no:${NODE_A}|papel:primario|cluster:${NODE_A}`, reply: afterRequest(`status:ok|quantidade:1\n${FILE_FIELDS}\n`) })
  const mirror = await mirrorOf(t, primary.address)
  const c = client(mirror.address, primary.address)
  t.same((await c.list()).map((f) => f.name), ['f'])
  t.same(c.lastRead, { servedBy: { address: primary.address, node: NODE_A, role: 'primary' } }, 'no missedPrimary')
  t.same(ops(mirror), ['node'])
  t.same(ops(primary), ['node', 'list'])
})

t.test('a server without node ids serves as the primary it always was', async (t) => {
  const placeholder = await fakeNode(t, { node: 'papel:primario', reply: afterRequest(`status:ok|quantidade:0\n`) })
  const c = client(placeholder.address)
  t.same(await c.list(), [])
  t.same(c.lastRead, { servedBy: { address: placeholder.address, node: null, role: 'primary' } })
  t.equal(await c.hello(), ID, 'hello with an id is a read too')
})
