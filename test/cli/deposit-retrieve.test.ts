import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import t from 'tap'
import type { FileInfo } from '../../lib/protocol/replies.js'
import {
  ROOT,
  UUID_V4,
  exists,
  listTree,
  randomBytesSeeded,
  runClient,
  savedId,
  sha256,
  sha256File,
  startServerProcess,
  writeRandomFile,
} from '../helpers/bins.js'

/** End to end through bin/server and bin/client: bytes in, the same bytes out. */
const MiB = 1024 * 1024


t.test('a 100 MiB file makes the round trip byte for byte', async (t) => {
  const dir = t.testdir()
  const data = join(dir, 'data')
  const home = join(dir, 'home')
  const server = await startServerProcess(t, { dataDir: data })
  const src = join(dir, 'big.bin')
  const hash = await writeRandomFile(src, 100 * MiB, 'round trip')

  const dep = await runClient(['deposit', src], { home, port: server.port })
  t.equal(dep.code, 0, `deposit exits 0 (stderr: ${dep.stderr})`)
  const said = dep.stdout.toString()
  t.match(said, /^deposited big\.bin \(100\.0 MiB, sha256 [0-9a-f]{16}…, 1 copy\)\n$/, 'one line naming the file')
  t.ok(said.includes(hash.slice(0, 16)), 'and the start of its sha256')
  t.equal(dep.stderr, '', 'nothing on stderr: no progress bar without a TTY')

  const out = join(dir, 'out.bin')
  const ret = await runClient(['retrieve', 'big.bin', '-o', out], { home, port: server.port })
  t.equal(ret.code, 0, `retrieve exits 0 (stderr: ${ret.stderr})`)
  t.equal(ret.stderr, '')
  t.equal((await stat(out)).size, 100 * MiB, 'retrieved size')
  t.equal(await sha256File(out), hash, 'retrieved bytes hash like the original')
  t.same((await readdir(dir)).sort(), ['big.bin', 'data', 'home', 'out.bin'], 'no partial file left beside the output')

  const id = await savedId(home, server.port)
  t.match(id, UUID_V4, 'the issued id was saved')
  t.same(await readdir(join(data, 'clients', id!, 'blobs')), [hash], 'the server holds exactly one blob, named by its sha256')
  t.same(await readdir(join(data, 'tmp')), [], 'and no upload left in tmp')
})

t.test('stdin deposit, and retrieve to stdout', async (t) => {
  const dir = t.testdir()
  const home = join(dir, 'home')
  const server = await startServerProcess(t, { dataDir: join(dir, 'data') })
  // An odd size, so the chunked body does not end on a neat boundary.
  const bytes = randomBytesSeeded(3 * MiB + 12_345, 'stdin')

  const dep = await runClient(['deposit', '-', '--name', 'piped.bin'], { home, port: server.port, input: bytes })
  t.equal(dep.code, 0, `deposit - exits 0 (stderr: ${dep.stderr})`)
  t.match(dep.stdout.toString(), /^deposited piped\.bin \(/)
  t.equal(dep.stderr, '', 'no progress bar when stderr is not a TTY')

  const ret = await runClient(['retrieve', 'piped.bin', '-o', '-'], { home, port: server.port })
  t.equal(ret.code, 0, `retrieve -o - exits 0 (stderr: ${ret.stderr})`)
  t.equal(ret.stdout.length, bytes.length, 'stdout has exactly as many bytes as were deposited')
  t.ok(ret.stdout.equals(bytes), 'stdout is exactly the deposited bytes, nothing else')
  t.equal(ret.stderr, '', 'no progress bar and no chatter on stderr')

  const list = await runClient(['list', '--json'], { home, port: server.port })
  t.equal(list.code, 0)
  const entries = JSON.parse(list.stdout.toString()) as FileInfo[]
  t.match(entries, [{ name: 'piped.bin', size: bytes.length, sha256: sha256(bytes), replicas: 0 }], 'the trailer carried size and hash')
})

t.test('names are labels, not paths', async (t) => {
  const dir = t.testdir()
  const data = join(dir, 'data')
  const home = join(dir, 'home')
  const work = join(dir, 'work', 'a', 'b')
  await mkdir(work, { recursive: true })
  const server = await startServerProcess(t, { dataDir: data })
  const src = join(dir, 'src.bin')
  const bytes = randomBytesSeeded(64 * 1024, 'names')
  await writeFile(src, bytes)

  const odd = 'a|b:c\nd'
  const escape = '../../escape'
  const dots = '../..'
  for (const name of [odd, escape, dots]) {
    const dep = await runClient(['deposit', src, '--name', name], { home, port: server.port, cwd: work })
    t.equal(dep.code, 0, `deposit --name ${JSON.stringify(name)} exits 0 (stderr: ${dep.stderr})`)
  }

  const list = await runClient(['list', '--json'], { home, port: server.port })
  t.equal(list.code, 0)
  const names = (JSON.parse(list.stdout.toString()) as FileInfo[]).map((e) => e.name).sort()
  t.same(names, [dots, escape, odd].sort(), 'list --json gives every name back exactly, newline and all')

  const table = await runClient(['list'], { home, port: server.port })
  t.equal(table.code, 0)
  t.equal(table.stdout.toString().trimEnd().split('\n').length, 4, 'the human table keeps one line per file (header + 3)')

  // No safe local name can be made from these: exit 2, nothing written.
  for (const name of [odd, dots]) {
    const ret = await runClient(['retrieve', name], { home, port: server.port, cwd: work })
    t.equal(ret.code, 2, `retrieve ${JSON.stringify(name)} without -o is a usage error`)
    t.match(ret.stderr, /^deposito: USAGE: .*-o/)
  }
  t.same(await readdir(work), [], 'the refused retrievals wrote nothing')

  // `../../escape` has a plain last segment; without -o the file lands in the working directory under that
  // segment, never two levels up (defaultOutputPath in lib/cli/client-commands.ts).
  const plain = await runClient(['retrieve', escape], { home, port: server.port, cwd: work })
  t.equal(plain.code, 0, `retrieve ../../escape without -o (stderr: ${plain.stderr})`)
  t.same(await readdir(work), ['escape'], 'written as ./escape')
  t.ok((await readFile(join(work, 'escape'))).equals(bytes))

  const out = join(dir, 'escape-out.bin')
  const ret = await runClient(['retrieve', escape, '-o', out], { home, port: server.port, cwd: work })
  t.equal(ret.code, 0, `retrieve ../../escape -o FILE (stderr: ${ret.stderr})`)
  t.ok((await readFile(out)).equals(bytes), 'with -o FILE the bytes land in FILE')
  const oddOut = join(dir, 'odd-out.bin')
  t.equal((await runClient(['retrieve', odd, '-o', oddOut], { home, port: server.port })).code, 0)
  t.ok((await readFile(oddOut)).equals(bytes))

  // Nothing escaped: the depot holds only its own layout, and no "escape" appeared where a path join would put it.
  const id = (await savedId(home, server.port))!
  const tree = await listTree(data)
  const blob = join('clients', id, 'blobs', sha256(bytes))
  // `lock` is the running server's hold on its data directory; `node.json` its node id; `tls/` its certificate.
  const own = (f: string) => f !== 'lock' && f !== 'node.json' && f !== 'tls/key.pem' && f !== 'tls/cert.pem'
  t.same(tree.filter((f) => own(f) && !/^clients\/[^/]+\/files\/[0-9a-f]{64}\.json$/.test(f)), [blob], 'data dir: one blob, metadata files, nothing else')
  t.equal(tree.filter(own).length, 4, 'three metadata files beside the blob')
  const wouldBe = [
    resolve(data, escape),
    resolve(data, 'clients', escape),
    resolve(data, 'clients', id, 'files', escape),
    resolve(data, 'clients', id, 'blobs', escape),
    resolve(ROOT, escape),
    resolve(work, escape),
    resolve(dir, 'escape'),
  ]
  for (const path of wouldBe) t.notOk(await exists(path), `nothing at ${path}`)
})
