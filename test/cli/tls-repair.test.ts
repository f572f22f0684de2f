import { readdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { EXIT, randomBytesSeeded, runClient, sha256, startServerProcess } from '../helpers/bins.js'
import { byMsg, nodeAddress, waitForLog, writeSecret } from '../helpers/cluster.js'

// A primary whose own copy is gone fetches it back from a mirror over the peers' link: with TLS on every node the
// fetch must speak TLS-PSK like every other peer connection (a plaintext one is refused, TLS_REQUIRED, and the
// read would fail although a mirror holds the file).
t.test('with --tls everywhere, a primary repairs a lost copy from its mirror and serves it', async (t) => {
  const dir = t.testdir()
  const { path: secretFile } = await writeSecret(dir)
  const primary = await startServerProcess(t, { dataDir: join(dir, 'primary'), args: ['--tls', '--secret-file', secretFile, '--heartbeat-interval', '1'] })
  const mirror = await startServerProcess(t, { dataDir: join(dir, 'mirror'), args: ['--tls', '--secret-file', secretFile, '--join', nodeAddress(primary)] })
  await waitForLog(primary, byMsg('mirror joined'), { what: 'the mirror joining' })
  const home = join(dir, 'home')
  const data = randomBytesSeeded(100_000, 'tls repair')
  const src = join(dir, 'doc')
  await writeFile(src, data)
  const dep = await runClient(['--tls', 'deposit', src, '--replicas', '1'], { home, port: primary.port })
  t.equal(dep.code, EXIT.OK, dep.stderr)
  // The primary's blob goes missing (a lost disk sector, a careless rm): only the mirror has the bytes now.
  const clients = join(primary.dataDir, 'clients')
  for (const owner of await readdir(clients)) await rm(join(clients, owner, 'blobs', sha256(data)), { force: true })
  const got = await runClient(['--tls', 'retrieve', 'doc', '-o', '-'], { home, port: primary.port })
  t.equal(got.code, EXIT.OK, got.stderr)
  t.equal(sha256(got.stdout), sha256(data), 'the right bytes, fetched from the mirror over TLS')
  t.notOk(mirror.logLines.some((l) => l.includes('refused a plaintext connection')), 'the mirror saw no plaintext attempt')
})
