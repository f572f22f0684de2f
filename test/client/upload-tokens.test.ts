import { createHash, randomBytes } from 'node:crypto'
import { createReadStream, readFileSync } from 'node:fs'
import { stat, utimes, writeFile, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { DepositoClient } from '../../lib/client/client.js'
import { depositWithRetry } from '../../lib/client/resume.js'
import { UploadTokens, uploadKey } from '../../lib/client/upload-tokens.js'
import { cuttingProxy } from '../helpers/cutting-proxy.js'
import { CLUSTER, resumableNode } from '../helpers/resumable-node.js'

const ID = '9d9d9d9d-9999-4999-8999-999999999999'
const sleep = async () => {}

async function setup(t: Test, cuts: number[]) {
  const dir = t.testdir({ home: {} })
  const node = await resumableNode(t)
  const proxy = await cuttingProxy(t, { target: node.port, cuts })
  const client = new DepositoClient({ server: { host: '127.0.0.1', port: proxy.port }, id: ID })
  const tokens = new UploadTokens(join(dir, 'home'))
  const path = join(dir, 'file.bin')
  const bytes = randomBytes(400 * 1024)
  await writeFile(path, bytes)
  const run = async (retries: number) => {
    const info = await stat(path)
    return depositWithRetry(client, { name: 'file.bin', size: info.size, file: { path, mtimeMs: info.mtimeMs, open: () => createReadStream(path) }, tokens, policy: { retries, sleep } })
  }
  return { node, proxy, tokens, path, bytes, run }
}

const saved = (tokens: UploadTokens) => readFile(tokens.path, 'utf8').then((s) => JSON.parse(s) as Record<string, string>)

t.test('a token is saved before the first byte, reused by a re-run of the same file, removed on success', async (t) => {
  const { node, proxy, tokens, path, bytes, run } = await setup(t, [150_000])
  let atFirstHeader: Record<string, string> | undefined
  node.onHeader = (h) => {
    if (h.startsWith('op:deposit|') && !atFirstHeader) atFirstHeader = JSON.parse(readFileSync(tokens.path, 'utf8'))
  }
  await t.rejects(run(0), { code: 'CONNECTION_LOST' }, '--retries 0: the cut ends the run')
  const token = /upload:([^|]+)/.exec(proxy.matched[0]!)![1]!
  t.same(Object.values(atFirstHeader ?? {}), [token], 'uploads.json named the token before the server saw the deposit')
  const info = await stat(path)
  const key = { cluster: CLUSTER, clientId: ID, name: 'file.bin', path, size: info.size, mtimeMs: info.mtimeMs }
  t.same(await saved(tokens), { [uploadKey(key)]: token }, 'kept after the cut, keyed by cluster, id, name, path, size and mtime')
  t.equal((await stat(tokens.path)).mode & 0o777, 0o600, 'readable by the user alone')

  const done = await run(0)
  t.equal(done.sha256, createHash('sha256').update(bytes).digest('hex'))
  t.match(proxy.matched[1]!, `upload:${token}`, 'the re-run names the same token')
  t.match(proxy.matched[1]!, /offset:[1-9]/, 'and sends from the offset the server holds')
  t.ok(node.headers.some((h) => h.startsWith('op:offset|') && h.includes(token)), 'after asking for it')
  t.same(await saved(tokens), {}, 'removed once acknowledged')
})

t.test('a file changed since (mtime) is a new deposit with a new token', async (t) => {
  const { node, proxy, path, run } = await setup(t, [150_000])
  await t.rejects(run(0), { code: 'CONNECTION_LOST' })
  await utimes(path, new Date(), new Date(Date.now() + 5_000))
  await run(0)
  const [first, second] = proxy.matched.map((h) => /upload:([^|]+)/.exec(h)?.[1])
  t.ok(first && second && first !== second, 'another token')
  t.notMatch(proxy.matched[1]!, /offset:/, 'sent from 0')
  t.notOk(node.headers.some((h) => h.startsWith('op:offset|')), 'no offset asked for a token never used')
})

t.test('tokens of other deposits stay when one is removed', async (t) => {
  const tokens = new UploadTokens(t.testdir())
  const a = { cluster: 'c', clientId: ID, name: 'a', path: '/a', size: 1, mtimeMs: 1 }
  const b = { ...a, name: 'b' }
  await tokens.save(a, 'ta')
  await tokens.save(b, 'tb')
  await tokens.remove(a)
  t.equal(await tokens.get(a), undefined)
  t.equal(await tokens.get(b), 'tb')
})
