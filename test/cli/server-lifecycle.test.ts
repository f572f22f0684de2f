import { readFile, readdir, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import t from 'tap'
import type { FileInfo } from '../../lib/protocol/replies.js'
import {
  EXIT,
  ONE_LINE,
  exists,
  randomBytesSeeded,
  runClient,
  runServerToExit,
  savedId,
  sha256,
  spawnClient,
  startServerProcess,
  waitForDir,
  writeRandomFile,
} from '../helpers/bins.js'

/** bin/server as a process: stopping, crashing, restarting on the same data, refusing bad flags. */
const MiB = 1024 * 1024
const FAILURE_EXITS = new Set<number>(Object.values(EXIT).filter((code) => code !== 0))


t.test('files survive a SIGTERM and a restart on the same data dir', async (t) => {
  const dir = t.testdir()
  const data = join(dir, 'data')
  const home = join(dir, 'home')
  const first = await startServerProcess(t, { dataDir: data })
  const bytes = randomBytesSeeded(MiB + 7, 'restart')
  const src = join(dir, 'keep.bin')
  await writeFile(src, bytes)
  const dep = await runClient(['deposit', src], { home, port: first.port })
  t.equal(dep.code, 0, dep.stderr)
  const before = await runClient(['list', '--json'], { home, port: first.port })
  t.equal(before.code, 0, before.stderr)

  t.equal(await first.stop('SIGTERM'), 0, 'SIGTERM stops the server with exit status 0')
  const logged = first.logLines.map((line) => (JSON.parse(line) as { msg: string }).msg)
  t.ok(logged.includes('stopped'), 'it logged "stopped" on the way out')

  // Same port, so the id home saved for 127.0.0.1:PORT applies again, as after a real restart.
  const second = await startServerProcess(t, { dataDir: data, port: first.port })
  t.equal(second.port, first.port)
  const out = join(dir, 'out.bin')
  const ret = await runClient(['retrieve', 'keep.bin', '-o', out], { home, port: second.port })
  t.equal(ret.code, 0, `retrieve after the restart (stderr: ${ret.stderr})`)
  t.equal(sha256(await readFile(out)), sha256(bytes), 'identical bytes')

  const after = await runClient(['list', '--json'], { home, port: second.port })
  t.equal(after.code, 0, after.stderr)
  const entries = JSON.parse(after.stdout.toString()) as FileInfo[]
  t.ok(Array.isArray(entries), 'list --json is an array')
  t.equal(entries.length, 1)
  const [entry] = entries
  t.same(Object.keys(entry!).sort(), ['name', 'replicas', 'servedBy', 'sha256', 'size', 'storedAt'])
  t.match(entry, { name: 'keep.bin', size: bytes.length, sha256: sha256(bytes), replicas: 0 })
  t.equal(new Date(entry!.storedAt).toISOString(), entry!.storedAt, 'storedAt is an ISO 8601 time')
  t.same(entries, JSON.parse(before.stdout.toString()), 'the listing is the one from before the restart, storedAt included')
})

t.test('kill -9 during a deposit: the old version survives, the temp file is swept', async (t) => {
  const dir = t.testdir()
  const data = join(dir, 'data')
  const home = join(dir, 'home')
  const first = await startServerProcess(t, { dataDir: data })

  const v1 = randomBytesSeeded(4096, 'version 1')
  const small = join(dir, 'v1.bin')
  await writeFile(small, v1)
  const dep1 = await runClient(['deposit', small, '--name', 'big.bin'], { home, port: first.port })
  t.equal(dep1.code, 0, dep1.stderr)
  const id = (await savedId(home, first.port))!
  const tmp = join(data, 'tmp')
  t.same(await readdir(tmp), [], 'tmp is empty between requests')

  const big = join(dir, 'v2.bin')
  await writeRandomFile(big, 200 * MiB, 'version 2')
  const upload = waitForDir(tmp, (entries) => entries.some((e) => e.endsWith('.upload.part')))
  // --no-resume --retries 0: the throwaway temp file's path (a resumable deposit's bytes are kept as a partial upload,
  // by design), and the client's one attempt (it would otherwise retry the killed server).
  const client = spawnClient(['deposit', big, '--name', 'big.bin', '--no-resume', '--retries', '0'], { home, port: first.port })
  const [leftover] = await upload
  t.equal(await first.stop('SIGKILL'), null, 'the server died of SIGKILL')
  const result = await client.done

  t.not(result.code, 0, 'the interrupted deposit fails')
  t.ok(FAILURE_EXITS.has(result.code!), `with a documented exit status (got ${result.code}; CONNECTION_LOST is ${EXIT.CONNECTION_LOST})`)
  t.match(result.stderr, ONE_LINE, 'one line on stderr')
  const named = /^deposito: ([A-Z_]+): /.exec(result.stderr)?.[1] as keyof typeof EXIT | undefined
  t.ok(named && EXIT[named] === result.code, `the stderr line names the code that matches the exit status (${result.stderr.trim()})`)
  t.ok(await exists(join(tmp, leftover!)), 'the killed server left its temp file behind')

  const second = await startServerProcess(t, { dataDir: data })
  t.same(await readdir(tmp), [], 'a restart empties tmp')
  const env = { DEPOSITO_ID: id }
  const ret = await runClient(['retrieve', 'big.bin', '-o', '-'], { home, port: second.port, env })
  t.equal(ret.code, 0, ret.stderr)
  t.ok(ret.stdout.equals(v1), 'version 1 is intact')
  const list = await runClient(['list', '--json'], { home, port: second.port, env })
  t.match(JSON.parse(list.stdout.toString()), [{ name: 'big.bin', size: v1.length, sha256: sha256(v1) }])
  t.same(await readdir(join(data, 'clients', id, 'blobs')), [sha256(v1)], 'only the version 1 blob is stored')
})

t.test(
  'kill -9 while the client waits on a slow stdin: CONNECTION_LOST',
  async (t) => {
    const dir = t.testdir()
    const data = join(dir, 'data')
    const server = await startServerProcess(t, { dataDir: data })
    const input = new PassThrough()
    const client = spawnClient(['deposit', '-', '--name', 'slow.bin'], { home: join(dir, 'home'), port: server.port, input, timeoutMs: 30_000 })
    const sent = 64 * 1024
    input.write(Buffer.alloc(sent, 7))
    // Wait until the server has written every byte sent so far: the client is now idle, waiting for stdin.
    const tmp = join(data, 'tmp')
    await waitForDir(tmp, async (entries) => {
      for (const e of entries) if (e.endsWith('.upload.part') && (await stat(join(tmp, e)).catch(() => undefined))?.size === sent) return true
      return false
    })
    await server.stop('SIGKILL')
    const result = await client.done
    t.equal(result.code, EXIT.CONNECTION_LOST, 'the connection dropped before the reply')
    // Bytes of the pipe were consumed: the client says why it does not retry, then the connection's error.
    t.match(result.stderr, /^deposito: a deposit from a pipe cannot be resumed\ndeposito: CONNECTION_LOST: /)
  },
)

t.test('bad server flags and a busy port', async (t) => {
  const dir = t.testdir()
  const never = join(dir, 'never')
  const bad = await runServerToExit(['--port', 'notaport', '--data', never])
  t.equal(bad.code, EXIT.USAGE, '--port notaport exits 2')
  t.match(bad.stderr, /notaport/, 'and says which value is wrong')
  t.notOk(await exists(never), 'without touching the data dir')

  const range = await runServerToExit(['--port', '65536', '--data', never])
  t.equal(range.code, EXIT.USAGE, '--port 65536 exits 2')

  const server = await startServerProcess(t, { dataDir: join(dir, 'a') })
  const busy = await runServerToExit(['--host', '127.0.0.1', '--port', String(server.port), '--data', join(dir, 'b'), '--log-level', 'info'])
  t.not(busy.code, 0, 'a second server on a port in use exits non-zero')
  t.ok(FAILURE_EXITS.has(busy.code!), `with a documented status (got ${busy.code})`)
  t.match(busy.stderr, ONE_LINE, 'and exactly one line on stderr')
  t.match(busy.stderr, new RegExp(`^deposito-server: [A-Z_]+: .*${server.port}`), 'naming the port')
  const still = await runClient(['id'], { home: join(dir, 'home'), port: server.port })
  t.equal(still.code, 0, 'the first server is unaffected')
})
