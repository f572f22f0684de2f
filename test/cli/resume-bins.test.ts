import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { EXIT, randomBytesSeeded, runClient, sha256File, startServerProcess, writeRandomFile } from '../helpers/bins.js'
import { cuttingProxy } from '../helpers/cutting-proxy.js'

/**
 * bin/client through a proxy that cuts, against today's bin/server (which answers `op:offset` NOT_FOUND and
 * ignores offsets): what the user sees on stderr, and the exit statuses. The server side of resuming is tested
 * where it lives; here a resume goes on from what the primary kept, and says so.
 */
const MiB = 1024 * 1024
// From wherever the primary says it holds: 0 B before partial uploads existed, the bytes it kept now.
const RESUMED = /^deposito: connection lost at [0-9.]+ (B|KiB|MiB); resuming from [0-9.]+ (B|KiB|MiB) \(try 2 of 6\)$/m

t.test('a cut deposit and a cut retrieval retry by themselves and say so', async (t) => {
  const dir = t.testdir()
  const home = join(dir, 'home')
  const server = await startServerProcess(t, { dataDir: join(dir, 'data') })
  const src = join(dir, 'file.bin')
  const hash = await writeRandomFile(src, 2 * MiB, 'resume bins')
  const proxy = await cuttingProxy(t, { target: server.port, cuts: [300_000] })
  const dep = await runClient(['deposit', src], { home, port: proxy.port })
  t.equal(dep.code, EXIT.OK, `deposit exits 0 (stderr: ${dep.stderr})`)
  t.match(dep.stderr, RESUMED, 'stderr says it resumed, and from where')
  t.equal(proxy.cut, 1)
  t.same(JSON.parse(await readFile(join(home, 'uploads.json'), 'utf8')), {}, 'the token is gone once acknowledged')

  const down = await cuttingProxy(t, { target: server.port, cuts: [500_000], direction: 'down', cutWhen: (h) => h.startsWith('op:retrieve|') })
  const out = join(dir, 'out.bin')
  const ret = await runClient(['retrieve', 'file.bin', '-o', out], { home, port: down.port })
  t.equal(ret.code, EXIT.OK, `retrieve exits 0 (stderr: ${ret.stderr})`)
  t.match(ret.stderr, /^deposito: connection lost at .+; resuming from [0-9.]+ (B|KiB|MiB) \(try 2 of 6\)$/m)
  t.equal(await sha256File(out), hash, 'the file is whole')
})

t.test('a cut pipe is not resumed; --retries 0 gives up at the first cut and keeps the token', async (t) => {
  const dir = t.testdir()
  const home = join(dir, 'home')
  const server = await startServerProcess(t, { dataDir: join(dir, 'data') })
  const proxy = await cuttingProxy(t, { target: server.port, cuts: [200_000, 200_000] })
  const bytes = randomBytesSeeded(MiB, 'pipe')
  const piped = await runClient(['deposit', '-', '--name', 'p.bin'], { home, port: proxy.port, input: bytes })
  t.equal(piped.code, EXIT.CONNECTION_LOST, `the connection error's status (stderr: ${piped.stderr})`)
  t.match(piped.stderr, /^deposito: a deposit from a pipe cannot be resumed$/m)
  t.notMatch(piped.stderr, /resuming/)

  const src = join(dir, 'f.bin')
  await writeRandomFile(src, MiB, 'once')
  const once = await runClient(['deposit', src, '--retries', '0'], { home, port: proxy.port })
  t.equal(once.code, EXIT.CONNECTION_LOST, `no retry (stderr: ${once.stderr})`)
  t.equal(Object.keys(JSON.parse(await readFile(join(home, 'uploads.json'), 'utf8'))).length, 1, 'the token stays for a re-run')
})

t.test('--no-resume sends no token', async (t) => {
  const dir = t.testdir()
  const home = join(dir, 'home')
  const server = await startServerProcess(t, { dataDir: join(dir, 'data') })
  const proxy = await cuttingProxy(t, { target: server.port, cuts: [100_000] })
  const src = join(dir, 'f.bin')
  await writeRandomFile(src, MiB, 'no resume')
  const dep = await runClient(['deposit', src, '--no-resume'], { home, port: proxy.port })
  t.equal(dep.code, EXIT.OK, `retried from 0 (stderr: ${dep.stderr})`)
  t.match(dep.stderr, RESUMED)
  t.equal(proxy.matched.length, 2)
  t.ok(proxy.matched.every((h) => !h.includes('upload:')), 'no token on the wire')
  await t.rejects(readFile(join(home, 'uploads.json')), { code: 'ENOENT' }, 'nor in uploads.json')
})
