import t from 'tap'
import { readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { fsyncDir, readJsonIfExists, renameDurable, tempName, writeFileDurable } from '../../lib/store/durable-fs.js'

t.test('writeFileDurable creates, then replaces, and leaves no temp', async (t) => {
  const dir = t.testdir({ tmp: {}, out: {} })
  const tmp = join(dir, 'tmp')
  const target = join(dir, 'out', 'meta.json')
  await writeFileDurable(target, 'first\n', tmp)
  t.equal(await readFile(target, 'utf8'), 'first\n')
  await writeFileDurable(target, 'second, longer than the first\n', tmp)
  t.equal(await readFile(target, 'utf8'), 'second, longer than the first\n')
  await writeFileDurable(target, '', tmp)
  t.equal(await readFile(target, 'utf8'), '', 'a shorter write leaves nothing of the old content')
  t.same(await readdir(tmp), [], 'no temp left in tmp/')
  t.same(await readdir(join(dir, 'out')), ['meta.json'], 'nothing else appeared beside the target')
})

t.test('writeFileDurable honours the mode of a new file', async (t) => {
  const dir = t.testdir({ tmp: {} })
  const target = join(dir, 'secret')
  await writeFileDurable(target, 'x', join(dir, 'tmp'), 0o600)
  t.equal((await stat(target)).mode & 0o777, 0o600)
})

t.test('a failed writeFileDurable leaves the old content and no temp', async (t) => {
  const dir = t.testdir({ tmp: {}, out: { 'keep.json': 'old\n', 'adir': { inside: 'x' } } })
  const tmp = join(dir, 'tmp')
  await t.rejects(writeFileDurable(join(dir, 'missing', 'f.json'), 'new', tmp), { code: 'ENOENT' }, 'target dir missing')
  t.same(await readdir(tmp), [], 'no temp after a failed rename')
  await t.rejects(writeFileDurable(join(dir, 'out', 'adir'), 'new', tmp), 'target is a non-empty directory')
  t.same(await readdir(tmp), [], 'no temp after a refused replace')
  t.equal(await readFile(join(dir, 'out', 'adir', 'inside'), 'utf8'), 'x', 'the directory is untouched')
  await writeFile(join(dir, 'blocker'), 'a file where a dir should be')
  await t.rejects(writeFileDurable(join(dir, 'blocker', 'f.json'), 'new', tmp), { code: 'ENOTDIR' })
  t.same(await readdir(tmp), [])
  const keep = join(dir, 'out', 'keep.json')
  await t.rejects(writeFileDurable(keep, 'new', join(dir, 'no-tmp')), { code: 'ENOENT' }, 'tmp dir missing')
  t.equal(await readFile(keep, 'utf8'), 'old\n', 'the old content survives')
  t.same((await readdir(join(dir, 'out'))).sort(), ['adir', 'keep.json'])
})

t.test('renameDurable moves a file into place', async (t) => {
  const dir = t.testdir({ a: { src: 'bytes' }, b: { dst: 'old' } })
  await renameDurable(join(dir, 'a', 'src'), join(dir, 'b', 'dst'))
  t.equal(await readFile(join(dir, 'b', 'dst'), 'utf8'), 'bytes')
  t.same(await readdir(join(dir, 'a')), [])
  await t.rejects(renameDurable(join(dir, 'a', 'src'), join(dir, 'b', 'again')), { code: 'ENOENT' })
})

t.test('fsyncDir syncs a directory and reports a missing one', async (t) => {
  const dir = t.testdir({ sub: {} })
  await t.resolves(fsyncDir(join(dir, 'sub')))
  await t.rejects(fsyncDir(join(dir, 'nope')), { code: 'ENOENT' })
})

t.test('tempName stays inside the temp dir and never repeats', async (t) => {
  const tmp = '/data/tmp'
  const names = new Set<string>()
  for (let i = 0; i < 100; i++) {
    const name = tempName(tmp, '../../etc/passwd')
    t.equal(dirname(name), tmp)
    names.add(name)
  }
  t.equal(names.size, 100)
  t.match(basename([...names][0]), /^[0-9a-f]{16}\.passwd\.part$/)
})

t.test('readJsonIfExists: the parsed file, undefined if there is none, and any other failure thrown', async (t) => {
  const dir = t.testdir({ 'ok.json': '{"mirrors":["a"]}\n', 'bad.json': '{"mirrors":', 'a-dir': {} })
  t.same(await readJsonIfExists(join(dir, 'ok.json')), { mirrors: ['a'] })
  t.equal(await readJsonIfExists(join(dir, 'missing.json')), undefined)
  await t.rejects(readJsonIfExists(join(dir, 'bad.json')), SyntaxError, 'a torn or foreign file is an error, not "no file"')
  await t.rejects(readJsonIfExists(join(dir, 'a-dir')), { code: 'EISDIR' })
})
