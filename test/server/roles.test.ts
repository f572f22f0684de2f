import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import t from 'tap'
import { DepositoClient } from '../../lib/client/client.js'
import { rawRequest, replyFields, startServer, waitUntil } from '../helpers/server.js'
import { readNodeFingerprint } from '../../lib/server/node-cert.js'

// Roles in one process, with each node's store at hand (test/cluster/roles.test.ts is the same with real
// processes): what a mirror refuses, what it serves, and what it says about itself.

const SECRET = Buffer.from('a test cluster secret, long enough')

t.test('a mirror refuses client writes and minting, serves reads from its copies, and reports itself as a mirror', async (t) => {
  const root = t.testdir()
  const common = { secret: SECRET, heartbeatIntervalMs: 20 }
  const primary = await startServer(t, { ...common, dataDir: join(root, 'p') })
  const primaryAt = `127.0.0.1:${primary.address.port}`
  const mirror = await startServer(t, { ...common, dataDir: join(root, 'm'), join: primaryAt })
  await waitUntil('the mirror to join', () => mirror.identity.clusterId === primary.identity.id)
  const client = new DepositoClient({ server: { host: '127.0.0.1', port: primary.address.port } })
  await client.deposit(Readable.from([Buffer.from('copied')]), { name: 'f', size: 6, replicas: 1 })
  const id = await client.id()
  const ask = async (line: string) => replyFields((await rawRequest(mirror.address.port, [line + '\n'])).line)

  for (const line of ['op:hello', `op:delete|id_cliente:${id}|nome_arquivo:f`, `op:replicas|id_cliente:${id}|nome_arquivo:f|qtd_replicas:0`, `op:deposit|id_cliente:${id}|tamanho_arquivo:0|hash_arquivo:*|nome_arquivo:n`]) {
    t.match(await ask(line), { code: 'NOT_PRIMARY', primario: primaryAt }, line.split('|')[0]!)
  }
  t.equal(mirror.store.clientCount(), 1, 'no id issued on the mirror')
  t.ok(mirror.store.stat(id, 'f'), 'its copy untouched')
  t.match(await ask(`op:hello|id_cliente:${randomUUID()}`), { status: 'ok', novo: '0', papel: 'espelho', cluster: primary.identity.id }, 'any well-formed id: a mirror cannot check ids')
  t.match(await ask(`op:list|id_cliente:${randomUUID()}`), { status: 'ok', quantidade: '0' })
  t.match(await ask(`op:retrieve|id_cliente:${randomUUID()}|nome_arquivo:f`), { code: 'NOT_FOUND' })
  t.match(await ask(`op:list|id_cliente:${id}`), { status: 'ok', quantidade: '1' })
  const status = await rawRequest(mirror.address.port, [`op:status|id_cliente:${id}\n`])
  t.match(replyFields(status.line), { papel: 'espelho', no: mirror.identity.id, nos: '1', sub_replicados: '0' }, 'no counts on a mirror, though its copy asks for 1 replica')
  t.match(replyFields(status.body.toString().trim()), { papel: 'espelho', no: mirror.identity.id })

  // The primary shows the mirror's address in `espelhos`, its records name the mirror's id.
  t.equal((await client.list())[0]?.mirrors?.[0], `127.0.0.1:${mirror.address.port}`)
  t.same(primary.store.stat(id, 'f')?.mirrors, [mirror.identity.id])
  const nodes = (await client.status()).nodes
  t.same(nodes.map((n) => [n.id, n.role]), [[primary.identity.id, 'primary'], [mirror.identity.id, 'mirror']])
})

t.test('a lone node is a primary and its own cluster', async (t) => {
  const lone = await startServer(t)
  const impressao = await readNodeFingerprint(lone.store.layout.root)
  t.same(replyFields((await rawRequest(lone.address.port, ['op:node\n'])).line), { status: 'ok', no: lone.identity.id, papel: 'primario', cluster: lone.identity.id, impressao })
  t.match(replyFields((await rawRequest(lone.address.port, ['op:hello\n'])).line), { status: 'ok', novo: '1', no: lone.identity.id, papel: 'primario' })
})
