import { randomBytes } from 'node:crypto'
import { readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { DepositoClient } from '../../lib/client/client.js'
import { UploadTokens } from '../../lib/client/upload-tokens.js'
import { depositCommand, retrieveCommand } from '../../lib/cli/client-commands.js'
import { formatBytes } from '../../lib/cli/format.js'
import { cuttingProxy } from '../helpers/cutting-proxy.js'
import { resumableNode } from '../helpers/resumable-node.js'
import { output } from '../helpers/output.js'

/** The commands behind `deposit` and `retrieve`, cut by a proxy: the stderr line that says where they resumed. */
const ID = '9d9d9d9d-9999-4999-8999-999999999999'
const sleep = async () => {}

async function setup(t: Test, cuts: number[], direction: 'up' | 'down' = 'up') {
  const dir = t.testdir({ home: {} })
  const node = await resumableNode(t)
  const cutWhen = (h: string) => h.startsWith(direction === 'up' ? 'op:deposit|' : 'op:retrieve|')
  const proxy = await cuttingProxy(t, { target: node.port, cuts, direction, cutWhen })
  const client = new DepositoClient({ server: { host: '127.0.0.1', port: proxy.port }, id: ID })
  return { dir, node, proxy, client, tokens: new UploadTokens(join(dir, 'home')) }
}

t.test('deposit: stderr names where the bytes stopped and where the retry starts', async (t) => {
  const { dir, node, client, tokens } = await setup(t, [150_000])
  const path = join(dir, 'f.bin')
  const bytes = randomBytes(500 * 1024)
  await writeFile(path, bytes)
  const { out, stderr, stdout } = output()
  const done = await depositCommand(client, out, path, { tokens, sleep })
  t.equal(done.size, bytes.length)
  t.match(stdout.text, /^deposited f\.bin/)
  const offset = /offset:(\d+)/.exec(node.headers.filter((h) => h.startsWith('op:deposit|'))[1]!)![1]!
  t.match(stderr.text, new RegExp(`^deposito: connection lost at [0-9.]+ [KM]iB; resuming from ${formatBytes(Number(offset)).replace('.', '\\.')} \\(try 2 of 6\\)\\n$`))
})

t.test('deposit: a refusal of op:offset other than NOT_FOUND is the answer', async (t) => {
  const { dir, node, client, tokens } = await setup(t, [100_000])
  const path = join(dir, 'f.bin')
  await writeFile(path, randomBytes(300 * 1024))
  node.refuse = (h) => (h.startsWith('op:offset|') ? 'status:error|code:INTERNAL|message:disk on fire\n' : undefined)
  await t.rejects(depositCommand(client, output().out, path, { tokens, sleep, retries: 3 }), { code: 'INTERNAL' })
  t.equal(Object.keys(JSON.parse(await readFile(tokens.path, 'utf8'))).length, 1, 'the token stays for a later run')
})

t.test('retrieve: a cut file retrieval resumes, says so, and ends with the file in place', async (t) => {
  const { dir, node, client } = await setup(t, [200_000], 'down')
  const bytes = randomBytes(600 * 1024)
  node.files.set('f', bytes)
  const { out, stderr, stdout } = output()
  await retrieveCommand(client, out, 'f', { output: join(dir, 'got.bin'), sleep, retries: 1 })
  t.ok((await readFile(join(dir, 'got.bin'))).equals(bytes))
  t.match(stdout.text, /^retrieved f → /)
  t.match(stderr.text, /^deposito: connection lost at .+; resuming from .+ \(try 2 of 2\)\n$/)
  t.equal((await stat(join(dir, 'got.bin'))).size, bytes.length)
})

t.test('retrieve -o -: the bytes after those written, once each', async (t) => {
  const { node, client } = await setup(t, [200_000], 'down')
  const bytes = randomBytes(600 * 1024)
  node.files.set('f', bytes)
  const { out, stderr, stdout } = output()
  const chunks: Buffer[] = []
  Object.assign(stdout, { write: (c: Buffer, cb: () => void) => (chunks.push(Buffer.from(c)), cb(), true) })
  await retrieveCommand(client, out, 'f', { output: '-', sleep })
  t.ok(Buffer.concat(chunks).equals(bytes))
  t.match(stderr.text, /resuming from/)
})

t.test('retrieve: a hash mismatch is tried once more, from 0, then reported', async (t) => {
  const { dir, node, client } = await setup(t, [], 'down')
  node.files.set('f', randomBytes(1000))
  node.refuse = (h) => (h.startsWith('op:retrieve|') ? `status:ok|nome_arquivo:f|tamanho_arquivo:3|hash_arquivo:${'a'.repeat(64)}|qtd_replicas:0|data:2024-01-01T00:00:00.000Z\nabc` : undefined)
  await t.rejects(retrieveCommand(client, output().out, 'f', { output: join(dir, 'x'), sleep }), { code: 'HASH_MISMATCH' })
  t.equal(node.headers.filter((h) => h.startsWith('op:retrieve|')).length, 2, 'two tries')
  t.notMatch(node.headers.filter((h) => h.startsWith('op:retrieve|'))[1]!, /offset:/, 'the second from 0: the partial was deleted')
})
