import { writeFile } from 'node:fs/promises'
import t from 'tap'
import { randomBytesSeeded } from '../helpers/bins.js'
import { depositFrom, newId, newToken, sha } from '../helpers/resume.js'
import { rawRequest, replyFields, startServer } from '../helpers/server.js'

// `retrieve` with `offset:K` (a retrieval resuming): bytes K..N-1 after the usual reply line, which says offset.

t.test('retrieve from an offset: the suffix exactly, and the reply names the offset', async (t) => {
  const server = await startServer(t)
  const port = server.address.port
  const id = await newId(port)
  const file = randomBytesSeeded(1024 * 1024 + 3, 'suffix')
  t.equal((await depositFrom(port, { id, token: newToken(), name: 'f', file })).status, 'ok')
  const ask = (offset: number) => rawRequest(port, [`op:retrieve|id_cliente:${id}|nome_arquivo:f|offset:${offset}\n`])

  const mid = await ask(1000)
  t.same(replyFields(mid.line), { ...replyFields(mid.line), status: 'ok', offset: '1000', tamanho_arquivo: String(file.length), hash_arquivo: sha(file) })
  t.ok(mid.body.equals(file.subarray(1000)), 'bytes 1000.. exactly')

  const whole = await ask(0)
  t.equal(replyFields(whole.line).offset, '0')
  t.ok(whole.body.equals(file), 'offset 0 is the whole file')

  const end = await ask(file.length)
  t.same([replyFields(end.line).status, end.body.length], ['ok', 0], 'offset N: nothing left to send')

  t.match(replyFields((await ask(file.length + 1)).line), { code: 'BAD_HEADER', message: /past the end/ })
  const plain = await rawRequest(port, [`op:retrieve|id_cliente:${id}|nome_arquivo:f\n`])
  t.equal(replyFields(plain.line).offset, undefined, 'an old client sees no offset field')
})

t.test('from an offset the node does not hash what it sends: the client checks the whole file', async (t) => {
  const server = await startServer(t)
  const port = server.address.port
  const id = await newId(port)
  const file = randomBytesSeeded(64 * 1024, 'rot')
  await depositFrom(port, { id, token: newToken(), name: 'f', file })
  const rotten = Buffer.from(file)
  rotten[10] = rotten[10]! ^ 1
  await writeFile(server.store.layout.blob(id, sha(file)), rotten)
  const suffix = await rawRequest(port, [`op:retrieve|id_cliente:${id}|nome_arquivo:f|offset:5\n`])
  t.ok(suffix.body.equals(rotten.subarray(5)), 'the suffix is sent whole, as it is on disk')
})
