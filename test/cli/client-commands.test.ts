import { createHash } from 'node:crypto'
import { mkdir, readFile, readdir, readlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import t, { type Test } from 'tap'
import { DepositoClient } from '../../lib/client/client.js'
import {
  defaultOutputPath,
  deleteCommand,
  depositCommand,
  idCommand,
  listCommand,
  retrieveCommand,
  statusCommand,
} from '../../lib/cli/client-commands.js'
import { startServer } from '../helpers/server.js'
import { listen } from '../helpers/fake-server.js'
import { output } from '../helpers/output.js'

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex')

async function setup(t: Test) {
  const root = t.testdir({ data: {}, work: {} })
  const server = await startServer(t, { dataDir: join(root, 'data') })
  const client = new DepositoClient({ server: { host: '127.0.0.1', port: server.address.port } })
  const dir = join(root, 'work')
  const file = join(dir, 'notes.txt')
  await writeFile(file, 'hello, depot\n')
  return { client, dir, file }
}

t.test('deposit a file: one human line, nothing on stderr', async (t) => {
  const { client, file } = await setup(t)
  const { out, stdout, stderr } = output()
  const done = await depositCommand(client, out, file, {})
  t.match(done, { name: 'notes.txt', size: 13, copies: 1 })
  t.equal(stdout.text, `deposited notes.txt (13 B, sha256 ${sha256('hello, depot\n').slice(0, 16)}…, 1 copy)\n`)
  t.equal(stderr.text, '')
})

t.test('deposit --json, a --name, a control char in the name', async (t) => {
  const { client, file } = await setup(t)
  const { out, stdout } = output({ json: true })
  await depositCommand(client, out, file, { name: 'line\nbreak' })
  t.match(JSON.parse(stdout.text), { name: 'line\nbreak', size: 13, sha256: sha256('hello, depot\n'), copies: 1, replicas: 0 })
  const human = output()
  await depositCommand(client, human.out, file, { name: 'line\nbreak' })
  // The same bytes under the same name again: reported as already stored, the name quoted on one line.
  t.match(human.stdout.text, /^"line\\nbreak" is already stored, unchanged \(1 copy, no bytes sent\)/)
  t.equal(human.stdout.text.split('\n').length, 2, 'one line')
  const quiet = output({ quiet: true })
  await depositCommand(client, quiet.out, file, {})
  t.equal(quiet.stdout.text, '', '--quiet prints nothing')
})

t.test('deposit from stdin (-) needs a name', async (t) => {
  const { client } = await setup(t)
  const { out, stdout } = output()
  await t.rejects(depositCommand(client, out, '-', {}, Readable.from([Buffer.from('x')])), { code: 'USAGE', message: /--name/ })
  const done = await depositCommand(client, out, '-', { name: 'piped' }, Readable.from([Buffer.from('from a pipe')]))
  t.match(done, { name: 'piped', size: 11, sha256: sha256('from a pipe') })
  t.match(stdout.text, /^deposited piped \(11 B/)
})

t.test('deposit of a missing file or a directory is IO_ERROR', async (t) => {
  const { client, dir } = await setup(t)
  const { out, stdout } = output()
  await t.rejects(depositCommand(client, out, join(dir, 'nope'), {}), { code: 'IO_ERROR', message: /ENOENT/ })
  await t.rejects(depositCommand(client, out, dir, {}), { code: 'IO_ERROR', message: /not a regular file/ })
  t.equal(stdout.text, '')
})

t.test('list: empty, then a right-aligned table; --json', async (t) => {
  const { client, file } = await setup(t)
  const empty = output()
  t.same(await listCommand(client, empty.out), [])
  t.equal(empty.stdout.text, 'no files yet\n')
  await depositCommand(client, output().out, file, { name: 'b.txt' })
  await depositCommand(client, output().out, '-', { name: 'a.bin' }, Readable.from([Buffer.alloc(2048)]))
  const { out, stdout } = output()
  await listCommand(client, out)
  const lines = stdout.text.trimEnd().split('\n')
  t.equal(lines.length, 3)
  t.match(lines[0], /^NAME\s+SIZE\s+REPLICAS\s+STORED\s+SHA256$/)
  t.match(lines[1], new RegExp(`^a\\.bin\\s+2\\.00 KiB\\s+0\\s.*\\s${sha256(Buffer.alloc(2048)).slice(0, 12)}$`))
  t.match(lines[2], /^b\.txt\s+13 B\s+0\s/)
  const sizeEnd = lines[0]!.indexOf('SIZE') + 4
  t.equal(lines[1]!.slice(sizeEnd - 8, sizeEnd), '2.00 KiB', 'sizes right-aligned under SIZE')
  t.equal(lines[2]!.slice(sizeEnd - 4, sizeEnd), '13 B')
  const json = output({ json: true })
  await listCommand(client, json.out)
  t.same(
    (JSON.parse(json.stdout.text) as { name: string }[]).map((f) => f.name),
    ['a.bin', 'b.txt'],
  )
})

t.test('delete and id', async (t) => {
  const { client, file } = await setup(t)
  await depositCommand(client, output().out, file, {})
  const { out, stdout } = output()
  t.match(await deleteCommand(client, out, 'notes.txt'), { name: 'notes.txt' })
  t.equal(stdout.text, 'deleted notes.txt\n')
  const json = output({ json: true })
  await depositCommand(client, output().out, file, {})
  await deleteCommand(client, json.out, 'notes.txt')
  t.match(JSON.parse(json.stdout.text), { name: 'notes.txt', size: 13 })
  await t.rejects(deleteCommand(client, out, 'notes.txt'), { code: 'NOT_FOUND' })

  const id = output()
  t.equal(await idCommand(client, id.out), await client.id())
  t.equal(id.stdout.text, `${await client.id()}\n`)
  const idJson = output({ json: true })
  await idCommand(client, idJson.out)
  t.same(JSON.parse(idJson.stdout.text), { id: await client.id(), server: client.server })
})

t.test('retrieve to a path, into a directory, to stdout', async (t) => {
  const { client, dir, file } = await setup(t)
  await depositCommand(client, output().out, file, { name: 'deep/inside/notes.txt' })
  const target = join(dir, 'copy.txt')
  const { out, stdout } = output()
  t.match(await retrieveCommand(client, out, 'deep/inside/notes.txt', { output: target }), { size: 13 })
  t.equal(await readFile(target, 'utf8'), 'hello, depot\n')
  t.equal(stdout.text, `retrieved deep/inside/notes.txt → ${target} (13 B, sha256 verified)\n`)

  const into = join(dir, 'into')
  await mkdir(into)
  const json = output({ json: true })
  await retrieveCommand(client, json.out, 'deep/inside/notes.txt', { output: into })
  t.same(await readdir(into), ['notes.txt'], 'the last segment of the name, nothing else')
  t.match(JSON.parse(json.stdout.text), { path: join(into, 'notes.txt'), size: 13 })

  const raw = output()
  await retrieveCommand(client, raw.out, 'deep/inside/notes.txt', { output: '-' })
  t.equal(raw.stdout.text, 'hello, depot\n', 'only the bytes on stdout')
  t.same((await readdir(dir)).sort(), ['copy.txt', 'into', 'notes.txt'], 'no .partial left')
})

t.test('retrieve without -o writes the last segment of the name, here', async (t) => {
  const { client, dir, file } = await setup(t)
  await depositCommand(client, output().out, file, { name: 'a/b/c.txt' })
  const here = join(dir, 'here')
  await mkdir(here)
  t.chdir(here)
  const { out, stdout } = output()
  await retrieveCommand(client, out, 'a/b/c.txt', {})
  t.equal(await readFile(join(here, 'c.txt'), 'utf8'), 'hello, depot\n')
  t.equal(stdout.text, 'retrieved a/b/c.txt → c.txt (13 B, sha256 verified)\n')
  await t.rejects(retrieveCommand(client, out, 'a/..', {}), { code: 'USAGE' }, 'refused before asking the server')
  t.same(await readdir(here), ['c.txt'])
})

/** A server that answers every request with `reply`, once the request is in. */
async function fakeClient(t: Test, reply: string): Promise<DepositoClient> {
  const { port } = await listen(t, (s) => {
    s.on('end', () => s.end(reply))
    s.resume()
  })
  return new DepositoClient({ server: { host: '127.0.0.1', port }, id: '0c1f6c8e-3f1e-4d5b-9b5e-2f8a7c6d5e4f' })
}

t.test('copies are counted in the human line', async (t) => {
  const fields = `nome_arquivo:n|tamanho_arquivo:1|hash_arquivo:${sha256('x')}|qtd_replicas:2|data:2024-01-01T00:00:00Z`
  const mirrored = await fakeClient(t, `status:ok|${fields}|copias:3\n`)
  const { out, stdout } = output()
  t.match(await depositCommand(mirrored, out, '-', { name: 'n', replicas: 2 }, Readable.from([Buffer.from('x')])), { copies: 3, replicas: 2 })
  t.match(stdout.text, /, 3 copies\)\n$/)
})

t.test('a failed retrieve leaves no file and keeps the old one', async (t) => {
  const { client, dir } = await setup(t)
  const fields = `nome_arquivo:f|tamanho_arquivo:5|hash_arquivo:${sha256('hello')}|qtd_replicas:0|data:2024-01-01T00:00:00Z`
  const liar = await fakeClient(t, `status:ok|${fields}\njello`)
  const existing = join(dir, 'existing.txt')
  await writeFile(existing, 'precious')
  const { out, stdout } = output()
  await t.rejects(retrieveCommand(liar, out, 'f', { output: existing }), { code: 'HASH_MISMATCH' })
  await t.rejects(retrieveCommand(liar, out, 'f', { output: join(dir, 'fresh.txt') }), { code: 'HASH_MISMATCH' })
  await t.rejects(retrieveCommand(client, out, 'absent', { output: existing }), { code: 'NOT_FOUND' })
  await t.rejects(retrieveCommand(client, out, 'absent', { output: join(dir, 'fresh.txt') }), { code: 'NOT_FOUND' })
  t.equal(await readFile(existing, 'utf8'), 'precious', 'the old file is untouched')
  t.same((await readdir(dir)).sort(), ['existing.txt', 'notes.txt'], 'no new file, no .partial')
  t.equal(stdout.text, '')
})

/** Open descriptors of this process whose path lies in `dir`. */
async function openFilesIn(dir: string): Promise<string[]> {
  const links = await Promise.all((await readdir('/proc/self/fd')).map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => '')))
  return links.filter((l) => l.startsWith(dir))
}

t.test('a refused retrieve closes its temp file', async (t) => {
  const { client, dir } = await setup(t)
  await t.rejects(retrieveCommand(client, output().out, 'absent', { output: join(dir, 'x') }), { code: 'NOT_FOUND' })
  let open = await openFilesIn(dir)
  for (let i = 0; i < 200 && open.length > 0; i++) open = await new Promise((r) => setImmediate(() => r(openFilesIn(dir))))
  t.same(open, [], 'no descriptor left open')
})

t.test('retrieve into a missing directory is IO_ERROR', async (t) => {
  const { client, dir, file } = await setup(t)
  await depositCommand(client, output().out, file, {})
  await t.rejects(retrieveCommand(client, output().out, 'notes.txt', { output: join(dir, 'no', 'such', 'x') }), { code: 'IO_ERROR' })
})

t.test('defaultOutputPath', async (t) => {
  t.equal(defaultOutputPath('file.txt'), 'file.txt')
  t.equal(defaultOutputPath('dir/sub/file.txt'), 'file.txt')
  t.equal(defaultOutputPath('..\\win\\name'), 'name')
  t.equal(defaultOutputPath('../x'), 'x')
  for (const bad of ['', '.', '..', 'a/..', 'a/.', 'dir/', 'a\nb', 'tab\there', 'x\u0000']) {
    t.throws(() => defaultOutputPath(bad), { code: 'USAGE', message: /-o PATH/ }, JSON.stringify(bad))
  }
})

t.test('defaultOutputPath refuses DEL', async (t) => {
  t.throws(() => defaultOutputPath('del\u007f'), { code: 'USAGE' })
})

t.test('a progress bar goes to a TTY stderr, never to stdout', async (t) => {
  const { client, dir, file } = await setup(t)
  const up = output({ progress: true }, true)
  await depositCommand(client, up.out, file, {})
  t.ok(up.stderr.text.length > 0, 'deposit drew on stderr')
  t.match(up.stdout.text, /^deposited notes\.txt \(13 B, [^\n]*\)\n$/)
  t.notMatch(up.stdout.text, /\x1b/, 'no escapes on stdout')
  const down = output({ progress: true }, true)
  await retrieveCommand(client, down.out, 'notes.txt', { output: join(dir, 'back.txt') })
  t.ok(down.stderr.text.length > 0, 'retrieve drew on stderr')
  t.match(down.stdout.text, /^retrieved notes\.txt → [^\n]*\n$/)
  const piped = output({ progress: true }, true)
  await retrieveCommand(client, piped.out, 'notes.txt', { output: '-' })
  t.equal(piped.stdout.text, 'hello, depot\n', 'with -o -, stdout holds the bytes alone')
  const unknownSize = output({ progress: true }, true)
  await depositCommand(client, unknownSize.out, '-', { name: 'p' }, Readable.from([Buffer.from('piped')]))
  t.ok(unknownSize.stderr.text.length > 0, 'a bar without a total')
  t.match(unknownSize.stdout.text, /^deposited p \(5 B, [^\n]*\)\n$/)
  const notTTY = output({ progress: true })
  await depositCommand(client, notTTY.out, file, {})
  t.equal(notTTY.stderr.text, '', 'a stderr that is not a TTY gets nothing')
})

t.test('status: a table of nodes and a summary line, or one JSON document', async (t) => {
  const { client } = await setup(t)
  const human = output()
  await statusCommand(client, human.out)
  const lines = human.stdout.text.trim().split('\n')
  t.match(lines[0], /^NODE\s+ID\s+ROLE\s+STATE\s+FILES\s+STORED\s+FREE$/)
  t.match(lines[1], /^127\.0\.0\.1:\d+\s+[0-9a-f]{8}\s+primary\s+up\s+0\s+0 B\s+\S+/, 'each node with the start of its node id')
  t.equal(lines[2], 'every file has its copies')
  const json = output({ json: true })
  await statusCommand(client, json.out)
  t.match(JSON.parse(json.stdout.text), { nodes: [{ role: 'primary', up: true, files: 0 }], underReplicated: 0 })
})
