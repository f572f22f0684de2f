import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { EXIT, randomBytesSeeded, runClient, sha256, startServerProcess } from '../helpers/bins.js'
import { byMsg, mirrorArgs, nodeAddress, startCluster, waitForLog } from '../helpers/cluster.js'

/**
 * The reproductions, with real processes (bin/server and bin/client): writes through a primary-then-mirror
 * list never land on a mirror alone; a frozen primary does not hang reads; two spellings of one address are one
 * cluster; an identical re-deposit with a mirror down is stored, degraded, never NO_REPLICAS.
 */
const FAST = ['--response-timeout', '0.5']

t.test('the primary down: a deposit and a delete through P,M fail and nothing changes; the primary back serves the old bytes', async (t) => {
  const dir = t.testdir()
  const cluster = await startCluster(t, { dir, mirrors: 1 })
  const [mirror] = cluster.mirrors
  const home = join(dir, 'home')
  const doc = join(dir, 'doc')
  const v1 = randomBytesSeeded(10_000, 'v1')
  await writeFile(doc, v1)
  const list = `${nodeAddress(cluster.primary)},${nodeAddress(mirror!)}`
  t.equal((await runClient(['--server', list, 'deposit', doc, '--replicas', '1'], { home })).code, EXIT.OK)

  await cluster.primary.stop('SIGTERM')
  await writeFile(doc, randomBytesSeeded(10_000, 'v2'))
  const write = await runClient(['--server', list, ...FAST, 'deposit', doc, '--replicas', '1'], { home })
  t.equal(write.code, EXIT.UNREACHABLE, 'the deposit fails: writes go to the primary only')
  t.match(write.stderr, /writes go to the primary at .*, which does not answer; mirror .* takes no writes/)
  const del = await runClient(['--server', list, ...FAST, 'delete', 'doc'], { home })
  t.equal(del.code, EXIT.UNREACHABLE, 'so does the delete')
  const read = await runClient(['--server', list, ...FAST, 'retrieve', 'doc', '-o', '-'], { home })
  t.equal(read.code, EXIT.OK, 'a read is served by the mirror')
  t.equal(sha256(read.stdout), sha256(v1), 'with the acknowledged bytes')
  t.match(read.stderr, /served by mirror/)

  const primary = await startServerProcess(t, { dataDir: cluster.primary.dataDir, port: cluster.primary.port, args: cluster.primaryArgs })
  await waitForLog(primary, byMsg('mirror is up'), { what: 'the mirror seen again' })
  const after = await runClient(['--server', list, 'retrieve', 'doc', '-o', '-'], { home })
  t.equal(after.code, EXIT.OK)
  t.equal(sha256(after.stdout), sha256(v1), 'the primary back: the file is the acknowledged version, not deleted')
})

t.test('a frozen primary (SIGSTOP): reads move on to the mirror, writes fail within the response timeout', async (t) => {
  const dir = t.testdir()
  const cluster = await startCluster(t, { dir, mirrors: 1 })
  const home = join(dir, 'home')
  const doc = join(dir, 'doc')
  const data = randomBytesSeeded(50_000, 'frozen')
  await writeFile(doc, data)
  const list = `${nodeAddress(cluster.primary)},${nodeAddress(cluster.mirrors[0]!)}`
  t.equal((await runClient(['--server', list, 'deposit', doc, '--replicas', '1'], { home })).code, EXIT.OK)
  cluster.primary.proc.kill('SIGSTOP')
  t.teardown(() => {
    cluster.primary.proc.kill('SIGCONT')
  })
  // The client's own timeout is the hang guard: a client stuck on the frozen node would fail the test by it.
  const read = await runClient(['--server', list, ...FAST, '--json', 'retrieve', 'doc', '-o', join(dir, 'out')], { home, timeoutMs: 30_000 })
  t.equal(read.code, EXIT.OK, read.stderr)
  t.match(JSON.parse(read.stdout.toString()), { servedBy: { address: nodeAddress(cluster.mirrors[0]!), role: 'mirror' } }, '--json says the mirror served it')
  const listed = await runClient(['--server', list, ...FAST, 'list'], { home, timeoutMs: 30_000 })
  t.equal(listed.code, EXIT.OK)
  t.match(listed.stdout.toString(), /doc/)
  const write = await runClient(['--server', list, ...FAST, 'deposit', doc, '--name', 'other'], { home, timeoutMs: 30_000 })
  t.equal(write.code, EXIT.UNREACHABLE, 'a deposit fails, bounded, instead of waiting on the frozen primary')
})

t.test('localhost:PORT and 127.0.0.1:PORT are one cluster: one id, the same files', async (t) => {
  const dir = t.testdir()
  const server = await startServerProcess(t, { dataDir: join(dir, 'data') })
  const home = join(dir, 'home')
  const doc = join(dir, 'doc')
  await writeFile(doc, 'one cluster\n')
  t.equal((await runClient(['--server', `127.0.0.1:${server.port}`, 'deposit', doc], { home })).code, EXIT.OK)
  const other = await runClient(['--server', `localhost:${server.port}`, 'list'], { home })
  t.equal(other.code, EXIT.OK, other.stderr)
  t.match(other.stdout.toString(), /doc/, 'the file deposited through one spelling is listed through the other')
  const a = await runClient(['--server', `127.0.0.1:${server.port}`, 'id'], { home })
  const b = await runClient(['--server', `localhost:${server.port}`, 'id'], { home })
  t.equal(a.stdout.toString(), b.stdout.toString(), 'one id')
})

t.test('an identical re-deposit while one of its mirrors is down is stored, DEGRADED, and the count comes back', async (t) => {
  const dir = t.testdir()
  const cluster = await startCluster(t, { dir, mirrors: 2 })
  const home = join(dir, 'home')
  const doc = join(dir, 'doc')
  await writeFile(doc, randomBytesSeeded(20_000, 'again'))
  const port = cluster.primary.port
  t.equal((await runClient(['deposit', doc, '--replicas', '2'], { home, port })).code, EXIT.OK)
  const down = cluster.mirrors[1]!
  await down.stop('SIGKILL')
  await waitForLog(cluster.primary, byMsg('mirror is down'), { what: 'the mirror marked down' })
  const again = await runClient(['deposit', doc, '--replicas', '2'], { home, port })
  t.equal(again.code, 3, 'stored and acknowledged as degraded, not refused with NO_REPLICAS')
  const three = await runClient(['deposit', doc, '--replicas', '3'], { home, port })
  t.equal(three.code, EXIT.NO_REPLICAS, 'more than the cluster has at all stays NO_REPLICAS')
  const back = await startServerProcess(t, { dataDir: down.dataDir, port: down.port, args: mirrorArgs(cluster.secretFile, cluster.primary) })
  await waitForLog(cluster.primary, (e) => e.msg === 'mirror joined' && e.node !== undefined, { count: 3, what: 'the mirror joined again' })
  const status = await runClient(['--json', 'status'], { home, port })
  t.match(JSON.parse(status.stdout.toString()), { underReplicated: 0 }, 'the mirror back: no file short of copies')
  t.ok(back.proc.pid, 'the mirror runs')
})
