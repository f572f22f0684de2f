import { mkdir, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import t from 'tap'
import { listen } from '../helpers/fake-server.js'
import { runClient, sha256, spawnClient, startServerProcess, waitForDir } from '../helpers/bins.js'

// Ctrl-C (SIGINT) in the middle of a transfer: bin/client exits 130 and nothing is left half-written, on either
// side. (Ctrl-C at a menu prompt is tested with the menus.)

t.test('a retrieval cut by Ctrl-C leaves no .partial file', async (t) => {
  const root = t.testdir()
  const out = join(root, 'out')
  await mkdir(out)
  let sent!: () => void
  const bodySent = new Promise<void>((resolve) => (sent = resolve))
  // A server that announces 1 MiB, sends a little of it, then says nothing more.
  const { port } = await listen(t, (s) => {
    s.once('data', () => {
      const fields = `nome_arquivo:big.bin|tamanho_arquivo:1048576|hash_arquivo:${sha256(Buffer.alloc(1))}|qtd_replicas:0|data:2026-01-01T00:00:00Z`
      s.write(`status:ok|${fields}\n`)
      s.write(Buffer.alloc(4096), () => sent())
    })
  })
  const home = join(root, 'home')
  const client = spawnClient(['--id', '0c1f6c8e-3f1e-4d5b-9b5e-2f8a7c6d5e4f', 'retrieve', 'big.bin', '-o', out], { home, port })
  await bodySent
  await waitForDir(out, (entries) => entries.some((e) => e.endsWith('.partial')))
  client.proc.kill('SIGINT')
  const r = await client.done
  t.equal(r.code, 130, 'exit status 130')
  t.same(await readdir(out), [], 'the temp file is gone')
})

t.test('a deposit cut by Ctrl-C leaves nothing on the server', async (t) => {
  const dir = t.testdir()
  const server = await startServerProcess(t, { dataDir: join(dir, 'data') })
  const home = join(dir, 'home')
  const input = new PassThrough()
  const client = spawnClient(['deposit', '-', '--name', 'endless.bin'], { home, port: server.port, input })
  input.write(Buffer.alloc(1 << 20))
  const tmp = join(dir, 'data', 'tmp')
  await waitForDir(tmp, (entries) => entries.length > 0)
  client.proc.kill('SIGINT')
  const r = await client.done
  t.equal(r.code, 130, 'exit status 130')
  await waitForDir(tmp, (entries) => entries.length === 0)
  t.pass('the server threw the incomplete upload away')
  const list = await runClient(['--json', 'list'], { home, port: server.port })
  t.same(JSON.parse(list.stdout.toString()), [], 'and stored nothing')
})
