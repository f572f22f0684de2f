import { readFile, stat, writeFile, mkdir } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { IdentityFile, clusterKey, defaultHome, savedKey } from '../../lib/client/identity.js'

const A = '0c1f6c8e-3f1e-4d5b-9b5e-2f8a7c6d5e4f'
const B = '9b2d4f1a-7c3e-4a5b-8d6f-1e2a3b4c5d6e'

t.test('defaultHome honours DEPOSITO_HOME, else ~/.config/deposito', async (t) => {
  t.equal(defaultHome({ DEPOSITO_HOME: '/srv/ids' }), '/srv/ids')
  t.equal(defaultHome({}), join(homedir(), '.config', 'deposito'))
})

t.test('a missing file reads as no id', async (t) => {
  const ids = new IdentityFile(join(t.testdir(), 'never-created'))
  t.equal(ids.path, join(ids.home, 'ids.json'))
  t.equal(await ids.get('127.0.0.1:7420'), undefined)
})

t.test('ids are kept per server, and survive a new IdentityFile', async (t) => {
  const home = join(t.testdir(), 'home')
  const ids = new IdentityFile(home)
  await ids.set('127.0.0.1:7420', A)
  await ids.set('[::1]:9000', B)
  t.equal(await ids.get('127.0.0.1:7420'), A)
  t.equal(await ids.get('[::1]:9000'), B)
  t.equal(await ids.get('127.0.0.1:7421'), undefined, 'another port is another server')

  const again = new IdentityFile(home)
  t.equal(await again.get('[::1]:9000'), B)
  await again.set('127.0.0.1:7420', B)
  t.equal(await ids.get('127.0.0.1:7420'), B, 'set replaces the id of that server')
  t.equal(await ids.get('[::1]:9000'), B, 'and keeps the others')
  t.same(JSON.parse(await readFile(ids.path, 'utf8')), { '127.0.0.1:7420': B, '[::1]:9000': B })
})

t.test('the file is private: dirs 0700, file 0600', async (t) => {
  const root = t.testdir()
  const home = join(root, 'a', 'b')
  const ids = new IdentityFile(home)
  await ids.set('h:1', A)
  t.equal((await stat(join(root, 'a'))).mode & 0o777, 0o700, 'created parent')
  t.equal((await stat(home)).mode & 0o777, 0o700, 'created home')
  t.equal((await stat(ids.path)).mode & 0o777, 0o600)
})

t.test('a file that was world-readable is replaced by a private one', async (t) => {
  const home = t.testdir()
  await writeFile(join(home, 'ids.json'), JSON.stringify({ 'h:1': A }), { mode: 0o644 })
  const ids = new IdentityFile(home)
  await ids.set('h:2', B)
  t.equal((await stat(ids.path)).mode & 0o777, 0o600)
  t.equal(await ids.get('h:1'), A)
})

t.test('an unreadable file is an error, not an empty identity', async (t) => {
  const home = t.testdir()
  await mkdir(join(home, 'ids.json'))
  await t.rejects(new IdentityFile(home).get('h:1'), { code: 'EISDIR' })
})

const CLUSTER = '1a1a1a1a-1111-4111-8111-111111111111'

t.test('lookup: by cluster; a legacy address entry is copied under the cluster key and kept', async (t) => {
  const ids = new IdentityFile(t.testdir())
  t.equal(await ids.lookup({ cluster: CLUSTER, legacy: 'localhost:7420' }), undefined, 'nothing saved')
  await ids.set('127.0.0.1:7420', A)
  t.equal(await ids.lookup({ legacy: '127.0.0.1:7420' }), A, 'no cluster named: the address, as before')
  t.equal(await ids.lookup({ cluster: CLUSTER, legacy: '127.0.0.1:7420' }), A, 'the legacy entry is used')
  t.same(JSON.parse(await readFile(ids.path, 'utf8')), { '127.0.0.1:7420': A, [clusterKey(CLUSTER)]: A }, 'copied, not moved')
  t.equal(await ids.lookup({ cluster: CLUSTER, legacy: 'localhost:7420' }), A, 'any other spelling now finds it by cluster')
  await ids.set('10.0.0.9:7420', B)
  t.equal(await ids.lookup({ cluster: CLUSTER, legacy: '10.0.0.9:7420' }), A, 'the cluster key wins over a legacy entry')
  t.equal(savedKey({ cluster: CLUSTER, legacy: 'h:1' }), `cluster:${CLUSTER}`)
  t.equal(savedKey({ legacy: 'h:1' }), 'h:1')
})

t.test('parallel first runs claim one id per cluster', async (t) => {
  const home = t.testdir()
  const candidates = Array.from({ length: 8 }, (_, i) => `0c1f6c8e-3f1e-4d5b-9b5e-2f8a7c6d5e4${i}`)
  const claimed = await Promise.all(candidates.map((id) => new IdentityFile(home).claim(clusterKey(CLUSTER), id)))
  t.equal(new Set(claimed).size, 1, 'every process ends up with the same id')
  t.equal(await new IdentityFile(home).lookup({ cluster: CLUSTER, legacy: 'x:1' }), claimed[0])
})
