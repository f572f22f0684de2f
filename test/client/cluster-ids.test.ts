import { readFile, writeFile, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { DepositoClient } from '../../lib/client/client.js'
import { IdentityFile } from '../../lib/client/identity.js'
import { parseAddress } from '../../lib/net/address.js'
import { NODE_A, NODE_B, afterRequest, fakeNode, ops } from '../helpers/fake-node.js'

// Saved ids are keyed by the cluster the probe names, so every spelling of every node's address finds them.
const ISSUED = '9b2d4f1a-7c3e-4a5b-8d6f-1e2a3b4c5d6e'
const OLD = '0c1f6c8e-3f1e-4d5b-9b5e-2f8a7c6d5e4f'

async function primary(t: Parameters<typeof fakeNode>[0]) {
  return fakeNode(t, { node: `no:${NODE_A}|papel:primario|cluster:${NODE_A}`, reply: afterRequest(`status:ok|id_cliente:${ISSUED}|novo:1\n`) })
}

const client = (home: string, ...addresses: string[]) =>
  new DepositoClient({ server: addresses.map(parseAddress), responseTimeoutMs: 1_500, identity: new IdentityFile(home) })

t.test('localhost:P and 127.0.0.1:P reach one id; a mirror of the same cluster too', async (t) => {
  const home = t.testdir()
  const node = await primary(t)
  t.equal(await client(home, `127.0.0.1:${node.port}`).id(), ISSUED)
  t.equal(await client(home, `localhost:${node.port}`).id(), ISSUED, 'another spelling')
  const mirror = await fakeNode(t, { node: `no:${NODE_B}|papel:espelho|cluster:${NODE_A}|primario:${node.address}` })
  t.equal(await client(home, mirror.address).id(), ISSUED, 'through a mirror')
  t.equal(await client(home, mirror.address).savedId(), ISSUED, 'savedId finds it without asking for one')
  t.same(ops(node).filter((op) => op === 'hello'), ['hello'], 'one id was ever issued')
  t.same(JSON.parse(await readFile(join(home, 'ids.json'), 'utf8')), { [`cluster:${NODE_A}`]: ISSUED })
})

t.test('an id saved under the address (before clusters had ids) is used and copied under the cluster', async (t) => {
  const home = t.testdir()
  const node = await primary(t)
  await mkdir(home, { recursive: true })
  await writeFile(join(home, 'ids.json'), JSON.stringify({ [`127.0.0.1:${node.port}`]: OLD }))
  t.equal(await client(home, `127.0.0.1:${node.port}`).id(), OLD)
  t.equal(await client(home, `localhost:${node.port}`).id(), OLD, 'now under any spelling')
  t.same(ops(node), ['node', 'node'], 'no hello')
  t.same(JSON.parse(await readFile(join(home, 'ids.json'), 'utf8')), { [`127.0.0.1:${node.port}`]: OLD, [`cluster:${NODE_A}`]: OLD })
})

t.test('parallel first runs against one cluster share one id', async (t) => {
  const home = t.testdir()
  let n = 0
  const ids = ['11111111-1111-4111-8111-111111111111', '22222222-2222-4222-8222-222222222222', '33333333-3333-4333-8333-333333333333']
  const node = await fakeNode(t, {
    node: `no:${NODE_A}|papel:primario|cluster:${NODE_A}`,
    reply: (header, s) => afterRequest(`status:ok|id_cliente:${ids[n++ % ids.length]}|novo:1\n`)(header, s),
  })
  const got = await Promise.all(ids.map((_, i) => client(home, i % 2 ? node.address : `localhost:${node.port}`).id()))
  t.equal(new Set(got).size, 1, `one id for all: ${got.join(', ')}`)
})

t.test('no identity file: the id is kept in memory only', async (t) => {
  const node = await primary(t)
  const c = new DepositoClient({ server: parseAddress(node.address) })
  t.equal(await c.id(), ISSUED)
  t.equal(await c.savedId(), undefined)
})

t.test('a hello reply without a valid id is PROTOCOL_ERROR', async (t) => {
  const node = await fakeNode(t, { node: 'papel:primario', reply: afterRequest('status:ok|novo:1\n') })
  await t.rejects(new DepositoClient({ server: parseAddress(node.address) }).id(), { code: 'PROTOCOL_ERROR' })
})
