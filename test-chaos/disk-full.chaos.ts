/**
 * Chaos: the server's disk fills up. Every test mounts its own small tmpfs (8 MiB) as the server's data dir, so
 * ENOSPC is the kernel's own, at the byte where it really happens.
 *
 * Not part of `npm test` (mounting needs root, which CI may not grant): run with `npm run chaos`.
 * Coverage is off on purpose for chaos runs (--disable-coverage): these tests exercise failure paths, not
 * lines, and must not move the floors that .taprc enforces for the regular suite.
 */
import { once } from 'node:events'
import { readdir, rm } from 'node:fs/promises'
import { connect } from 'node:net'
import { join } from 'node:path'
import { PassThrough, Readable } from 'node:stream'
import t, { type Test } from 'tap'
import { DepositoClient } from '../lib/client/client.js'
import type { DepositoServer } from '../lib/server/server.js'
import { randomBytesSeeded, sha256 } from '../test/helpers/bins.js'
import { rawRequest, replyFields, startServer } from '../test/helpers/server.js'
import { KiB, MiB, blockSize, fillUntil, freeBytes, lazySource, mountTmpfs, tmpfsUnavailable } from './helpers.js'

function clientOf(server: DepositoServer, id?: string): DepositoClient {
  return new DepositoClient({ server: { host: '127.0.0.1', port: server.address.port }, id })
}

async function retrieveBytes(client: DepositoClient, name: string): Promise<Buffer> {
  const sink = new PassThrough()
  const parts: Buffer[] = []
  sink.on('data', (d: Buffer) => parts.push(d))
  const ended = once(sink, 'end')
  await client.retrieve(name, sink)
  await ended
  return Buffer.concat(parts)
}

const depositBuffer = (client: DepositoClient, name: string, bytes: Buffer) =>
  client.deposit(Readable.from([bytes]), { name, size: bytes.length })

const why = await tmpfsUnavailable()
if (why) {
  t.plan(0, `chaos tests need tmpfs mounts: ${why}`)
} else {
  t.test('disk full mid-deposit of unknown size: NO_SPACE, nothing left behind, old version kept', async (t) => {
    const { mnt, dataDir } = await mountTmpfs(t)
    const server = await startServer(t, { dataDir })
    const client = clientOf(server)
    const v1 = randomBytesSeeded(10 * KiB + 7, 'doc v1')
    await depositBuffer(client, 'doc', v1)
    const id = await client.id()
    const freeBefore = await freeBytes(mnt)
    t.ok(freeBefore < 8 * MiB && freeBefore > 7 * MiB, `about 8 MiB free before the big deposit (${freeBefore})`)

    // 32 MiB through a pipe-like stream: no size up front, so the server cannot refuse early and must hit ENOSPC.
    const big = lazySource(32 * MiB, 'too big')
    await t.rejects(client.deposit(big.stream, { name: 'doc' }), { name: 'DepositoError', code: 'NO_SPACE' }, 'refused with NO_SPACE')
    t.ok(big.produced() < 32 * MiB, `the client stopped reading its source at the refusal (${big.produced()} bytes read)`)

    // The server throws the temp file away before it replies, so this holds the moment the refusal is in.
    t.same(await readdir(join(dataDir, 'tmp')), [], 'tmp/ is empty')
    t.same(await readdir(join(dataDir, 'clients', id, 'blobs')), [sha256(v1)], 'only version 1 is stored')
    t.equal(await freeBytes(mnt), freeBefore, 'every byte of the failed upload was given back')

    t.same(await retrieveBytes(client, 'doc'), v1, '"doc" still retrieves as version 1')
    t.same(
      (await client.list()).map((f) => [f.name, f.size, f.sha256]),
      [['doc', v1.length, sha256(v1)]],
      'and lists as version 1',
    )

    const other = randomBytesSeeded(100 * KiB, 'other')
    const ok = await client.deposit(lazySource(other.length, 'other').stream, { name: 'other' })
    t.same([ok.name, ok.size, ok.sha256], ['other', other.length, sha256(other)], 'the server still takes a deposit afterwards')
    t.same(await retrieveBytes(client, 'other'), other, 'and serves it back')
  })

  t.test('a declared size larger than the free space is refused before any body byte is sent', async (t) => {
    const { mnt, dataDir } = await mountTmpfs(t)
    // A short idle timeout: a server that waited for the body would answer TIMEOUT, not hang the test.
    const server = await startServer(t, { dataDir, idleTimeoutMs: 5_000 })
    const { port } = server.address
    const id = replyFields((await rawRequest(port, ['op:hello\n'])).line).id_cliente!

    for (const [what, size] of [
      ['one byte more than is free', (await freeBytes(mnt)) + 1],
      ['1 TiB', 2 ** 40],
    ] as const) {
      const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true })
      t.teardown(() => void socket.destroy())
      socket.on('error', () => {})
      await once(socket, 'connect')
      const received: Buffer[] = []
      const line = new Promise<string>((resolve, reject) => {
        socket.on('data', (d: Buffer) => {
          received.push(d)
          const all = Buffer.concat(received)
          const nl = all.indexOf(10)
          if (nl !== -1) resolve(all.subarray(0, nl).toString())
        })
        socket.on('close', () => reject(new Error('the server closed without a reply line')))
      })
      const header = `op:deposit|id_cliente:${id}|tamanho_arquivo:${size}|hash_arquivo:${sha256(Buffer.from('x'))}|nome_arquivo:huge\n`
      // Only the header, and the socket stays open for writing: no body, no half-close.
      socket.write(header)
      const reply = replyFields(await line)
      t.same([reply.status, reply.code], ['error', 'NO_SPACE'], `${what}: NO_SPACE`)
      t.equal(socket.bytesWritten, Buffer.byteLength(header), `${what}: the reply came with nothing sent but the header`)
      t.notOk(socket.writableEnded, `${what}: and without our half-close`)
      t.same(await readdir(join(dataDir, 'tmp')), [], `${what}: no upload was even begun`)
      socket.destroy()
    }
    const list = await rawRequest(port, [`op:list|id_cliente:${id}\n`])
    t.equal(replyFields(list.line).quantidade, '0', 'nothing was stored')
  })

  /**
   * Fills the tmpfs so that a new version's blob fits exactly and the metadata file written after it cannot:
   * the upload (whole pages) and the blob rename succeed, the metadata write hits ENOSPC. tmpfs counts whole
   * pages and no blocks for directory entries, so this is exact; fillUntil checks it.
   */
  async function metadataWriteFails(t: Test) {
    const { mnt, dataDir } = await mountTmpfs(t)
    const server = await startServer(t, { dataDir })
    const client = clientOf(server)
    const id = await client.id()
    const v1 = randomBytesSeeded(5_000, 'meta v1')
    await depositBuffer(client, 'doc', v1)
    const v2 = randomBytesSeeded(16 * (await blockSize(mnt)), 'meta v2')
    await fillUntil(join(mnt, 'filler'), mnt, v2.length)
    const refused = await depositBuffer(client, 'doc', v2).then(
      () => undefined,
      (err: unknown) => err as { code?: string; message?: string },
    )
    return { mnt, dataDir, server, client, id, v1, v2, refused }
  }

  t.test('metadata write fails after the blob is in place: refused, old version kept, restart consistent', async (t) => {
    const { mnt, dataDir, server, client, id, v1, v2, refused } = await metadataWriteFails(t)
    t.ok(refused, 'the deposit is refused')
    t.equal(refused?.code, 'NO_SPACE', `with NO_SPACE (the server's ENOSPC; message: ${refused?.message})`)
    t.same(await readdir(join(dataDir, 'tmp')), [], 'tmp/ is empty: neither the upload nor the metadata temp file is left')
    t.same(await retrieveBytes(client, 'doc'), v1, 'the old version is still served')
    t.same((await client.list()).map((f) => f.sha256), [sha256(v1)], 'and listed')

    // Restart on the same dir, the disk still full: recovery must need no free space.
    await server.close(0)
    const again = await startServer(t, { dataDir })
    const after = clientOf(again, id)
    t.same((await after.list()).map((f) => [f.name, f.size, f.sha256]), [['doc', v1.length, sha256(v1)]], 'after a restart: the same list')
    t.same(await readdir(join(dataDir, 'clients', id, 'blobs')), [sha256(v1)], 'and no orphan blob')
    t.equal((await readdir(join(dataDir, 'clients', id, 'files'))).length, 1, 'and one metadata file')
    t.same(await retrieveBytes(after, 'doc'), v1, 'the old version is served after the restart')

    // Room again: the same deposit now goes through.
    await rm(join(mnt, 'filler'))
    const ok = await depositBuffer(after, 'doc', v2)
    t.equal(ok.sha256, sha256(v2), 'with space freed, version 2 commits')
    t.same(await retrieveBytes(after, 'doc'), v2, 'and is served')
    t.same(await readdir(join(dataDir, 'clients', id, 'blobs')), [sha256(v2)], 'version 1\'s blob went with it')
  })

  t.test('metadata write fails: the running server leaves no orphan blob and gives its space back', async (t) => {
    const { mnt, dataDir, id, v1, v2, refused } = await metadataWriteFails(t)
    t.equal(refused?.code, 'NO_SPACE', 'refused')
    t.same(await readdir(join(dataDir, 'clients', id, 'blobs')), [sha256(v1)], 'no blob but version 1\'s while the server runs')
    t.equal(await freeBytes(mnt), v2.length, 'the refused version\'s bytes are free again')
  })
}
