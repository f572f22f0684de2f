import { randomUUID } from 'node:crypto'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { EXIT, runClient, savedId, writeRandomFile } from '../helpers/bins.js'
import { nodeAddress, nodeId, startCluster } from '../helpers/cluster.js'
import { rawRequest, replyFields } from '../helpers/server.js'
import { readNodeFingerprint } from '../../lib/server/node-cert.js'

// Issue 9, "writes land on a mirror and are later undone": with real processes, a mirror refuses every client
// write with NOT_PRIMARY naming its primary, never issues a client id, and serves reads from its copies.

t.test('a mirror refuses writes with NOT_PRIMARY, issues no ids, serves reads, and says it is a mirror', async (t) => {
  const dir = t.testdir()
  const { primary, mirrors } = await startCluster(t, { dir, mirrors: 1 })
  const mirror = mirrors[0]!
  const [primaryId, mirrorId] = [await nodeId(primary), await nodeId(mirror)]
  const home = join(dir, 'home')
  const src = join(dir, 'doc.txt')
  const hash = await writeRandomFile(src, 5_000, 'roles')
  const dep = await runClient(['deposit', src, '--replicas', '1'], { home, port: primary.port })
  t.equal(dep.code, EXIT.OK, `the primary takes the deposit (stderr: ${dep.stderr})`)
  const id = (await savedId(home, primary.port))!
  const ask = async (line: string, body: string[] = []) => replyFields((await rawRequest(mirror.port, [line + '\n', ...body])).line)
  const refusal = {
    status: 'error',
    code: 'NOT_PRIMARY',
    message: `this node is a mirror; writes go to the primary at ${nodeAddress(primary)}`,
    primario: nodeAddress(primary),
  }

  await t.test('writes and a minting hello: NOT_PRIMARY, naming the primary', async (t) => {
    t.same(await ask('op:hello'), refusal, 'hello without an id')
    t.same(await ask(`op:deposit|id_cliente:${id}|tamanho_arquivo:5|hash_arquivo:*|nome_arquivo:new.txt`, ['hello', 'tamanho_arquivo:5|hash_arquivo:' + '0'.repeat(64) + '\n']), refusal, 'deposit')
    t.same(await ask(`op:delete|id_cliente:${id}|nome_arquivo:doc.txt`), refusal, 'delete')
    t.same(await ask(`op:replicas|id_cliente:${id}|nome_arquivo:doc.txt|qtd_replicas:0`), refusal, 'replicas')
    t.same(await readdir(join(mirror.dataDir, 'clients')), [id], 'the mirror issued no id: it holds only the owner it was sent copies for')
    t.same((await readdir(join(mirror.dataDir, 'clients', id, 'files'))).length, 1, 'the delete did not touch its copy; nothing new was stored')
  })

  await t.test('hello with an id, node and status answer as a mirror', async (t) => {
    t.match(await ask(`op:hello|id_cliente:${id}`), { status: 'ok', id_cliente: id, novo: '0', no: mirrorId, papel: 'espelho', cluster: primaryId })
    const impressao = (node: typeof primary) => readNodeFingerprint(node.dataDir)
    t.same(await ask('op:node'), { status: 'ok', no: mirrorId, papel: 'espelho', cluster: primaryId, primario: nodeAddress(primary), impressao: await impressao(mirror) })
    t.same(replyFields((await rawRequest(primary.port, ['op:node\n'])).line), { status: 'ok', no: primaryId, papel: 'primario', cluster: primaryId, impressao: await impressao(primary) })
    const status = await rawRequest(mirror.port, [`op:status|id_cliente:${randomUUID()}\n`])
    t.match(replyFields(status.line), { status: 'ok', no: mirrorId, papel: 'espelho', cluster: primaryId, primario: nodeAddress(primary), nos: '1' })
    t.match(replyFields(status.body.toString().trim()), { no: mirrorId, papel: 'espelho', estado: 'up' }, 'itself, as a mirror (the issue: it said primario)')
    const onPrimary = await rawRequest(primary.port, [`op:status|id_cliente:${id}\n`])
    const lines = onPrimary.body.toString().trim().split('\n').map(replyFields)
    t.match(lines, [{ no: primaryId, papel: 'primario' }, { no: mirrorId, papel: 'espelho', endereco: nodeAddress(mirror) }], 'the primary lists both, by id')
  })

  await t.test('reads: its copies for a known owner; nothing (not an error) for an owner it never saw', async (t) => {
    const list = await rawRequest(mirror.port, [`op:list|id_cliente:${id}\n`])
    t.match(replyFields(list.line), { status: 'ok', quantidade: '1' })
    t.match(replyFields(list.body.toString().trim()), { nome_arquivo: 'doc.txt', hash_arquivo: hash })
    const stranger = randomUUID()
    t.same(replyFields((await rawRequest(mirror.port, [`op:list|id_cliente:${stranger}\n`])).line), { status: 'ok', quantidade: '0' })
    t.match(replyFields((await rawRequest(mirror.port, [`op:retrieve|id_cliente:${stranger}|nome_arquivo:doc.txt\n`])).line), { code: 'NOT_FOUND' })
    const got = await rawRequest(mirror.port, [`op:retrieve|id_cliente:${id}|nome_arquivo:doc.txt\n`])
    t.match(replyFields(got.line), { status: 'ok', hash_arquivo: hash })
    t.equal(got.body.length, 5_000, 'the bytes come from the mirror\'s copy')
  })
})
