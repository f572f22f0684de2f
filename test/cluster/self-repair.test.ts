import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { EXIT, exists, runClient, savedId, sha256File, startServerProcess, writeRandomFile, type ServerProcess } from '../helpers/bins.js'
import { mirrorArgs, nodeAddress, nodeId, startCluster, waitForLog, type LogEntry } from '../helpers/cluster.js'
import { blobPath, flipByte, metaPath } from '../helpers/store-files.js'

/**
 * Self-repair with real bin/server processes on loopback: the primary's repair pass runs every second, and each
 * step is awaited through the log line that reports it (bounded by waitForLog's timeout), never by sleeping.
 */
const MiB = 1024 * 1024

const about = (msg: string, name: string) => (e: LogEntry) => e.msg === msg && e.name === name

t.test('one corrupt byte in the primary copy: retrieve returns the right bytes and the retrieve repairs the copy', async (t) => {
  // No scrub and no repair pass within the test (--scrub-bytes 0, the default 60 s interval): only the retrieve
  // can find and repair the copy, so the test cannot pass on a scrub's repair.
  const dir = t.testdir()
  const { primary } = await startCluster(t, { dir, mirrors: 1, primaryFlags: ['--scrub-bytes', '0'] })
  const home = join(dir, 'home')
  const sha = await writeRandomFile(join(dir, 'read.bin'), 2 * MiB + 17, 'read.bin')
  const dep = await runClient(['deposit', join(dir, 'read.bin'), '--replicas', '1'], { home, port: primary.port })
  t.equal(dep.code, EXIT.OK, `deposited with 2 copies (stderr: ${dep.stderr})`)
  const blob = blobPath(primary.dataDir, (await savedId(home, primary.port))!, sha)
  await flipByte(blob, 1 * MiB)
  const out = join(dir, 'read.out')
  const got = await runClient(['retrieve', 'read.bin', '-o', out], { home, port: primary.port })
  t.equal(got.code, EXIT.OK, `exit 0 (stderr: ${got.stderr})`)
  t.equal(await sha256File(out), sha, 'the retrieved file has the right bytes')
  await waitForLog(primary, (e) => e.msg === 'local copy is corrupt' && e.name === 'read.bin', { what: 'the retrieve to find the copy corrupt' })
  await waitForLog(primary, about('local copy repaired from a mirror', 'read.bin'), { what: 'read.bin to be repaired' })
  t.equal(await sha256File(blob), sha, "the primary's copy hashes right again")
})

t.test('self-repair on a primary and two mirrors', async (t) => {
  const dir = t.testdir()
  const primaryFlags = ['--repair-interval', '1', '--down-grace', '3600']
  const { primary, mirrors, secretFile } = await startCluster(t, { dir, mirrors: 2, primaryFlags })
  const [m1, m2] = mirrors as [ServerProcess, ServerProcess]
  const home = join(dir, 'home')
  const files: Record<string, string> = {}
  for (const name of ['scrub.bin', 'mirror.bin', 'deleted.bin']) {
    files[name] = await writeRandomFile(join(dir, name), 2 * MiB + 17, name)
    const dep = await runClient(['deposit', join(dir, name), '--replicas', '2'], { home, port: primary.port })
    t.equal(dep.code, EXIT.OK, `${name} deposited with 3 copies (stderr: ${dep.stderr})`)
  }
  const id = (await savedId(home, primary.port))!
  const blob = (node: ServerProcess, name: string) => blobPath(node.dataDir, id, files[name]!)

  await t.test('the scrub finds a corrupt primary copy nobody reads, and repairs it from a mirror', async (t) => {
    await flipByte(blob(primary, 'scrub.bin'), 12_345)
    await waitForLog(primary, about('scrub found a bad local copy', 'scrub.bin'), { what: 'the scrub to find scrub.bin bad' })
    await waitForLog(primary, about('local copy repaired from a mirror', 'scrub.bin'), { what: 'scrub.bin to be repaired' })
    t.equal(await sha256File(blob(primary, 'scrub.bin')), files['scrub.bin'], 'repaired on disk')
  })

  await t.test("the scrub finds a corrupt mirror copy: the mirror drops it and the primary restores the count", async (t) => {
    await flipByte(blob(m1, 'mirror.bin'), 0)
    await waitForLog(m1, about('scrub found a bad copy; dropping it', 'mirror.bin'), { what: 'the mirror to drop its bad copy' })
    // The primary's records and their log lines name mirrors by node id.
    const m1Id = await nodeId(m1)
    await waitForLog(primary, (e) => e.msg === 'a mirror lacks a copy its record names' && e.name === 'mirror.bin' && e.mirror === m1Id, {
      what: 'the primary to notice',
    })
    const [repaired] = await waitForLog(primary, about('repaired replica count', 'mirror.bin'), { what: 'the count restored' })
    t.same([...(repaired!.mirrors as string[])].sort(), [m1Id, await nodeId(m2)].sort(), 'both mirrors hold it again')
    t.equal(await sha256File(blob(m1, 'mirror.bin')), files['mirror.bin'], 'the mirror has a good copy again')
  })

  await t.test('delete while a mirror is down: once it is back, its copy is removed too', async (t) => {
    t.equal(await m2.stop('SIGTERM'), 0, 'm2 stopped')
    await waitForLog(primary, (e) => e.msg === 'mirror is down' && e.mirror === nodeAddress(m2), { what: 'm2 marked down' })
    const del = await runClient(['delete', 'deleted.bin'], { home, port: primary.port })
    t.equal(del.code, EXIT.OK, `delete: exit 0 (stderr: ${del.stderr})`)
    t.notOk(await exists(metaPath(m1.dataDir, id, 'deleted.bin')), 'gone at once from the live mirror')
    const { copies } = JSON.parse(await readFile(join(primary.dataDir, 'tombstones.json'), 'utf8')) as { copies: { mirror: string }[] }
    t.same(copies.map((c) => c.mirror), [await nodeId(m2)], 'a tombstone for m2, by id')
    t.ok(await exists(metaPath(m2.dataDir, id, 'deleted.bin')), 'm2 still has it on disk while down')

    const back = await startServerProcess(t, { dataDir: m2.dataDir, port: m2.port, args: mirrorArgs(secretFile, primary) })
    await waitForLog(primary, (e) => e.msg === 'stale copy removed from a mirror' && e.name === 'deleted.bin' && e.removed === true, {
      what: 'the stale copy removed',
    })
    t.notOk(await exists(metaPath(back.dataDir, id, 'deleted.bin')), 'm2 no longer has the name')
    t.notOk(await exists(blob(back, 'deleted.bin')), 'nor its bytes')
    t.equal(await sha256File(blob(back, 'scrub.bin')), files['scrub.bin'], 'its other copies are untouched')
  })
})
