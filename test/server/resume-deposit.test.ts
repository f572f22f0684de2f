import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { once } from 'node:events'
import { connect } from 'node:net'
import t, { type Test } from 'tap'
import { randomBytesSeeded } from '../helpers/bins.js'
import { captureLog, inProcessCluster, type Entry } from '../helpers/in-process-cluster.js'
import { cutDeposit, depositFrom, depositLine, newId, newToken, offsetOf, partialPath, sha, type Resumable } from '../helpers/resume.js'
import { rawRequest, replyFields, startServer } from '../helpers/server.js'

// The primary's side of resumable deposits, spoken raw (PROTOCOL.md, "Resumable transfers").

const MiB = 1024 * 1024

async function lone(t: Test) {
  const { log, waitFor } = captureLog()
  const server = await startServer(t, { log })
  const port = server.address.port
  return { server, port, dataDir: server.store.layout.root, id: await newId(port), waitFor }
}
t.test('a cut deposit leaves a partial; resuming from its offset completes it byte for byte', async (t) => {
  const { server, port, dataDir, id, waitFor } = await lone(t)
  const upload: Resumable = { id, token: newToken(), name: 'big.bin', file: randomBytesSeeded(3 * MiB + 7, 'cut') }
  const k = 2 * MiB
  await cutDeposit(port, dataDir, upload, k)
  let kept: Entry & { offset?: number } = {}
  await waitFor('the cut to be noticed', (e) => e.msg === 'partial upload kept' && (kept = e) !== undefined)
  const at = await offsetOf(port, id, upload.token)
  t.equal(Number(at.offset), kept.offset, 'the log says what offset reports')
  t.equal(at.status, 'ok', 'the server kept the partial')
  const offset = Number(at.offset)
  t.ok(offset > 0 && offset <= k, `offset ${offset} is within what was sent (${k})`)
  t.same([at.tamanho_arquivo, at.nome_arquivo], [String(upload.file.length), 'big.bin'], 'it says what the partial is of')
  t.same(replyFields((await rawRequest(port, [`op:list|id_cliente:${id}\n`])).line).quantidade, '0', 'list does not show a partial')

  const done = await depositFrom(port, upload, offset)
  t.same([done.status, done.hash_arquivo, done.tamanho_arquivo, done.copias], ['ok', sha(upload.file), String(upload.file.length), '1'])
  const stored = await readFile(server.store.layout.blob(id, sha(upload.file)))
  t.ok(stored.equals(upload.file), 'the stored file is byte-identical')
  t.equal((await offsetOf(port, id, upload.token)).code, 'NOT_FOUND', 'a committed partial is gone')
  await t.rejects(readFile(partialPath(dataDir, upload)), { code: 'ENOENT' })
})

t.test('offset 0 with an existing partial starts it over; a resumed deposit may be cut again', async (t) => {
  const { server, port, dataDir, id } = await lone(t)
  const upload: Resumable = { id, token: newToken(), name: 'twice', file: randomBytesSeeded(2 * MiB, 'twice') }
  await cutDeposit(port, dataDir, upload, MiB)
  const first = Number((await offsetOf(port, id, upload.token)).offset)
  await cutDeposit(port, dataDir, upload, MiB + MiB / 2, first)
  const second = Number((await offsetOf(port, id, upload.token)).offset)
  t.ok(second > first, `the second cut kept more (${first} → ${second})`)
  const done = await depositFrom(port, upload)
  t.equal(done.status, 'ok', 'a full resend (no offset) replaces the partial')
  t.equal(server.store.stat(id, 'twice')?.sha256, sha(upload.file))
})

t.test('a prefix altered on disk: HASH_MISMATCH, and the partial is gone', async (t) => {
  const { server, port, dataDir, id } = await lone(t)
  const upload: Resumable = { id, token: newToken(), name: 'bad', file: randomBytesSeeded(MiB, 'bad') }
  await cutDeposit(port, dataDir, upload, MiB / 2)
  const offset = Number((await offsetOf(port, id, upload.token)).offset)
  const path = partialPath(dataDir, upload)
  const bytes = await readFile(path)
  bytes[0] = bytes[0]! ^ 0xff
  await writeFile(path, bytes)
  const done = await depositFrom(port, upload, offset)
  t.equal(done.code, 'HASH_MISMATCH')
  t.equal((await offsetOf(port, id, upload.token)).code, 'NOT_FOUND', 'the client is told to start over')
  t.equal(server.store.stat(id, 'bad'), undefined, 'nothing was stored')
})

t.test('refusals before the body: another name or size, an offset beyond the partial, no partial, past the end', async (t) => {
  const { port, dataDir, id } = await lone(t)
  const upload: Resumable = { id, token: newToken(), name: 'a', file: randomBytesSeeded(MiB, 'a') }
  await cutDeposit(port, dataDir, upload, MiB / 2)
  const offset = Number((await offsetOf(port, id, upload.token)).offset)
  const renamed = await depositFrom(port, { ...upload, name: 'b' }, offset)
  t.match(renamed, { code: 'BAD_HEADER', message: /is of "a"/ })
  const resized = await depositFrom(port, { ...upload, file: upload.file.subarray(1) }, offset)
  t.match(resized, { code: 'BAD_HEADER', message: /1048576 bytes/ })
  const beyond = await depositFrom(port, upload, offset + 1)
  t.match(beyond, { code: 'BAD_HEADER', message: /fewer than offset/ })
  const past = await depositFrom(port, upload, MiB + 1)
  t.match(past, { code: 'BAD_HEADER', message: /past the end/ })
  const none = await depositFrom(port, { ...upload, token: newToken() }, 10)
  t.equal(none.code, 'NOT_FOUND', 'resuming a token the server never saw')
  t.equal(Number((await offsetOf(port, id, upload.token)).offset), offset, 'the refusals left the partial as it was')
  await writeFile(`${partialPath(dataDir, upload)}.json`, '{torn')
  t.equal((await depositFrom(port, upload, offset)).code, 'INTERNAL', 'an unreadable record is not guessed at')
  await writeFile(`${partialPath(dataDir, upload)}.json`, JSON.stringify({ name: 'a', size: MiB, owner: id, createdAt: '' }))
  t.equal((await depositFrom(port, upload, offset)).status, 'ok', 'and it still completes')
})

t.test('a partial is private: another client id cannot see or use it', async (t) => {
  const { port, dataDir, id } = await lone(t)
  const other = await newId(port)
  const upload: Resumable = { id, token: newToken(), name: 'mine', file: randomBytesSeeded(MiB, 'mine') }
  await cutDeposit(port, dataDir, upload, MiB / 2)
  const offset = Number((await offsetOf(port, id, upload.token)).offset)
  t.equal((await offsetOf(port, other, upload.token)).code, 'NOT_FOUND', 'offset by another id')
  const stolen = await depositFrom(port, { ...upload, id: other }, offset)
  t.equal(stolen.code, 'NOT_FOUND', 'resuming it under another id')
  t.equal(replyFields((await rawRequest(port, [`op:list|id_cliente:${other}\n`])).line).quantidade, '0')
  t.equal(replyFields((await rawRequest(port, [`op:offset|id_cliente:${newToken()}|upload:${upload.token}\n`])).line).code, 'UNKNOWN_CLIENT')
  t.equal(Number((await offsetOf(port, id, upload.token)).offset), offset, "the owner's partial is untouched")
})

t.test('two connections on one token: the second gets BUSY, the first completes', async (t) => {
  const { server, port, id } = await lone(t)
  const upload: Resumable = { id, token: newToken(), name: 'one', file: randomBytesSeeded(2 * MiB, 'one') }
  const first = connect({ host: '127.0.0.1', port, allowHalfOpen: true })
  await once(first, 'connect')
  const reply: Buffer[] = []
  first.on('data', (d: Buffer) => reply.push(d))
  first.write(depositLine(upload))
  first.write(upload.file.subarray(0, MiB))
  // The first holds the token once the offset op says so.
  const busy = await offsetOfUntilBusy(port, id, upload.token)
  t.match(busy, { code: 'BUSY', message: /being written by another connection/ })
  const second = await depositFrom(port, upload)
  t.match(second, { code: 'BUSY' }, 'a second writer is refused')
  first.end(upload.file.subarray(MiB))
  await once(first, 'end')
  t.equal(replyFields(Buffer.concat(reply).toString().split('\n')[0]!).status, 'ok', 'the first completes')
  first.destroy()
  t.ok((await readFile(server.store.layout.blob(id, sha(upload.file)))).equals(upload.file), 'the file is right')
})

async function offsetOfUntilBusy(port: number, id: string, token: string): Promise<Record<string, string>> {
  for (let i = 0; ; i++) {
    const reply = replyFields((await rawRequest(port, [`op:offset|id_cliente:${id}|upload:${token}\n`])).line)
    if (reply.code === 'BUSY' || i >= 500) return reply
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

t.test('with replicas: a resumed deposit reaches every mirror from the verified file, 3 copies', async (t) => {
  // No heartbeats or repair passes (joining marked both mirrors up): a ping timed out on a loaded box would mark a
  // mirror down and make the count degraded for reasons that are not this test's.
  const { primary, mirrors } = await inProcessCluster(t, { heartbeatIntervalMs: 600_000, repairIntervalMs: 600_000 })
  const port = primary.address.port
  const dataDir = primary.store.layout.root
  const id = await newId(port)
  const upload: Resumable = { id, token: newToken(), name: 'replicated', file: randomBytesSeeded(3 * MiB, 'rep'), replicas: 2 }
  await cutDeposit(port, dataDir, upload, 2 * MiB)
  const offset = Number((await offsetOf(port, id, upload.token)).offset)
  t.ok(offset > 0)
  const done = await depositFrom(port, upload, offset)
  t.same([done.status, done.copias, done.degradado], ['ok', '3', '0'])
  for (const node of [primary, ...mirrors]) {
    t.equal(node.store.stat(id, 'replicated')?.sha256, sha(upload.file))
    t.ok((await readFile(node.store.layout.blob(id, sha(upload.file)))).equals(upload.file), 'identical bytes on every node')
  }  // Never cut: sent to the mirrors as it arrives, as any deposit.
  const whole: Resumable = { ...upload, token: newToken(), name: 'whole', file: randomBytesSeeded(MiB, 'whole') }
  t.same([(await depositFrom(port, whole)).copias, mirrors.map((m) => m.store.stat(id, 'whole')?.sha256)], ['3', [sha(whole.file), sha(whole.file)]])
})

t.test('a mirror answers offset NOT_PRIMARY', async (t) => {
  const { mirrors } = await inProcessCluster(t, {}, 1)
  const line = (await rawRequest(mirrors[0]!.address.port, [`op:offset|id_cliente:${newToken()}|upload:${newToken()}\n`])).line
  t.equal(replyFields(line).code, 'NOT_PRIMARY')
})

t.test('re-hashing a long prefix is not an idle client: the idle timeout does not cut it', async (t) => {
  // The cut is made on a node with the usual timeouts; the resume goes to the same data dir restarted with an idle
  // timeout far shorter than the re-hash of 192 MiB (~0.2 s here): only the re-hash is silent for that long.
  const dataDir = await mkdtemp(join(tmpdir(), 'deposito-rehash-idle-'))
  t.teardown(() => rm(dataDir, { recursive: true, force: true }))
  const first = await startServer(t, { dataDir })
  const id = await newId(first.address.port)
  const prefix = 192 * MiB
  const upload: Resumable = { id, token: newToken(), name: 'long', file: randomBytesSeeded(prefix + MiB, 'long') }
  await cutDeposit(first.address.port, dataDir, upload, MiB)
  t.equal((await offsetOf(first.address.port, id, upload.token)).status, 'ok')
  await first.close(0)
  await writeFile(partialPath(dataDir, upload), upload.file.subarray(0, prefix))
  const server = await startServer(t, { dataDir, idleTimeoutMs: 50 })
  const done = await depositFrom(server.address.port, upload, prefix)
  t.same([done.status, done.hash_arquivo], ['ok', sha(upload.file)])
})
