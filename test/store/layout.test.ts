import t from 'tap'
import { createHash, randomUUID } from 'node:crypto'
import { dirname, join } from 'node:path'
import { Layout } from '../../lib/store/layout.js'

const root = '/srv/deposito-data'
const layout = new Layout(root)
const id = randomUUID()

t.test('paths sit where the layout comment says', async (t) => {
  t.equal(layout.tmp, join(root, 'tmp'))
  t.equal(layout.clients, join(root, 'clients'))
  t.equal(layout.client(id), join(root, 'clients', id))
  t.equal(layout.files(id), join(root, 'clients', id, 'files'))
  t.equal(layout.blobs(id), join(root, 'clients', id, 'blobs'))
  const hex = 'ab'.repeat(32)
  t.equal(layout.blob(id, hex), join(root, 'clients', id, 'blobs', hex))
  t.equal(layout.client(id.toUpperCase()), join(root, 'clients', id), 'ids are normalised to lower case')
})

t.test('non-UUID client ids are refused before they become a path', async (t) => {
  const bad = ['', '..', '../../etc', 'not-a-uuid', id + '/..', id + '\0', ` ${id}`, id.slice(1),
    '6fd6b349-b3f7-19ad-b8ec-8d5b039bad47' /* v1 */, '6fd6b349-b3f7-49ad-78ec-8d5b039bad47' /* bad variant */]
  for (const value of bad) {
    t.throws(() => layout.client(value), { code: 'BAD_HEADER' }, JSON.stringify(value))
    t.throws(() => layout.files(value), { code: 'BAD_HEADER' })
    t.throws(() => layout.blobs(value), { code: 'BAD_HEADER' })
    t.throws(() => layout.meta(value, 'x'), { code: 'BAD_HEADER' })
  }
})

t.test('blob names must be 64 lower-case hex digits', async (t) => {
  for (const value of ['', 'ab'.repeat(31), 'ab'.repeat(33), 'AB'.repeat(32), 'g'.repeat(64), '../'.repeat(21) + 'x',
    'ab'.repeat(32) + '\n', 'ab'.repeat(31) + '/x']) {
    t.throws(() => layout.blob(id, value), TypeError, JSON.stringify(value))
  }
})

t.test('metadata files are named by the hash of the name, whatever the name', async (t) => {
  for (const name of ['notes.txt', '../../etc/passwd', 'a/b', '/abs', '..', 'line\nbreak', 'x'.repeat(1024)]) {
    const meta = layout.meta(id, name)
    t.equal(dirname(meta), layout.files(id), `${JSON.stringify(name.slice(0, 20))} stays in files/`)
    t.equal(meta, join(layout.files(id), createHash('sha256').update(name).digest('hex') + '.json'))
  }
  t.not(layout.meta(id, 'a'), layout.meta(id, 'A'), 'names are case-sensitive')
})
