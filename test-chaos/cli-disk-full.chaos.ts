/**
 * Chaos: the server's disk fills up, seen through the real bins: bin/server with its data dir on a small tmpfs,
 * bin/client depositing a pipe. (Both run as plain `node BIN`, NODE_OPTIONS removed: see test/helpers/bins.ts.)
 *
 * Not part of `npm test` (mounting needs root, which CI may not grant): run with `npm run chaos`.
 * Coverage is off on purpose for chaos runs (--disable-coverage): these tests exercise failure paths, not
 * lines, and must not move the floors that .taprc enforces for the regular suite.
 */
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { EXIT, ONE_LINE, randomBytesSeeded, runClient, savedId, sha256, spawnClient, startServerProcess } from '../test/helpers/bins.js'
import { KiB, MiB, lazySource, mountTmpfs, tmpfsUnavailable } from './helpers.js'

const why = await tmpfsUnavailable()
if (why) {
  t.plan(0, `chaos tests need tmpfs mounts: ${why}`)
} else {
  t.test('bin/client deposit - onto a full disk: exit 17, one NO_SPACE line, the server unharmed', async (t) => {
    const { root, dataDir } = await mountTmpfs(t)
    const server = await startServerProcess(t, { dataDir })
    const home = join(root, 'home')
    const client = { home, port: server.port }

    const v1 = randomBytesSeeded(20 * KiB + 3, 'cli doc v1')
    const first = await runClient(['deposit', '-', '--name', 'doc'], { ...client, input: v1 })
    t.equal(first.code, EXIT.OK, `version 1 is deposited (stderr: ${first.stderr})`)
    const id = (await savedId(home, server.port))!

    // 32 MiB from a pipe into an 8 MiB disk: the size is unknown, so only ENOSPC can stop it.
    const big = lazySource(32 * MiB, 'cli too big')
    const full = await spawnClient(['deposit', '-', '--name', 'doc'], { ...client, input: big.stream }).done
    t.equal(full.code, EXIT.NO_SPACE, 'the client exits with status 17')
    t.match(full.stderr, ONE_LINE, 'one line on stderr')
    t.match(full.stderr, /^deposito: NO_SPACE: \S/, 'deposito: NO_SPACE: followed by the reason')
    t.equal(full.stdout.length, 0, 'nothing on stdout')

    t.same(await readdir(join(dataDir, 'tmp')), [], "the server's tmp/ is empty")
    t.same(await readdir(join(dataDir, 'clients', id, 'blobs')), [sha256(v1)], 'only version 1 is stored')
    t.ok(
      server.logLines.some((line) => (JSON.parse(line) as { code?: string }).code === 'NO_SPACE'),
      'the server logged the refusal',
    )
    t.equal(server.proc.exitCode, null, 'the server is still running')

    const back = await runClient(['retrieve', 'doc', '-o', '-'], client)
    t.equal(back.code, EXIT.OK, `retrieve exits 0 (stderr: ${back.stderr})`)
    t.same(back.stdout, v1, '"doc" is still version 1, byte for byte')

    const other = randomBytesSeeded(50 * KiB, 'cli other')
    const after = await runClient(['deposit', '-', '--name', 'other', '--json'], { ...client, input: other })
    t.equal(after.code, EXIT.OK, `a later deposit succeeds (stderr: ${after.stderr})`)
    t.equal((JSON.parse(after.stdout.toString()) as { sha256?: string }).sha256, sha256(other), 'with the right hash')
  })
}
