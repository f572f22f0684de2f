import { randomUUID } from 'node:crypto'
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { Membership } from '../../lib/cluster/membership.js'

/** The primary's list of mirrors (lib/cluster/membership.ts): keyed by node id; ids and addresses persist, liveness does not. */

/** A data dir as the server has it when Membership opens: BlobStore.open has already made DATA/tmp. */
async function dataDir(t: Test): Promise<string> {
  const dir = t.testdir()
  await mkdir(join(dir, 'tmp'), { recursive: true })
  return dir
}

interface Persisted {
  mirrors: { id: string; address: string }[]
  removed: string[]
}

async function persisted(dir: string): Promise<Persisted> {
  return JSON.parse(await readFile(join(dir, 'cluster.json'), 'utf8')) as Persisted
}

const A = randomUUID()
const B = randomUUID()

t.test('a fresh data dir knows no mirrors and writes nothing', async (t) => {
  const dir = await dataDir(t)
  const m = await Membership.open(dir)
  t.same(m.all(), [])
  t.same(m.live(), [])
  t.same((await readdir(dir)).sort(), ['tmp'], 'no cluster.json until a mirror joins')
})

t.test('add: the mirror is live at once and persists across open, as down', async (t) => {
  const dir = await dataDir(t)
  const m = await Membership.open(dir)
  await m.add(A, '127.0.0.1:7421')
  await m.add(B, '127.0.0.1:7422')
  t.same(m.live(), [A, B], 'both live right after joining, by id')
  t.match(m.all(), [{ id: A, address: '127.0.0.1:7421', up: true, lastSeen: String }, { id: B, address: '127.0.0.1:7422', up: true }])
  t.same((await persisted(dir)).mirrors, [{ id: A, address: '127.0.0.1:7421' }, { id: B, address: '127.0.0.1:7422' }], 'cluster.json lists them')
  t.same(await readdir(join(dir, 'tmp')), [], 'no temp file left behind')

  const reopened = await Membership.open(dir)
  t.same(
    reopened.all().map((s) => [s.id, s.address, s.up]),
    [
      [A, '127.0.0.1:7421', false],
      [B, '127.0.0.1:7422', false],
    ],
    'after a restart: known, but down until a heartbeat answers',
  )
  t.same(reopened.live(), [])
  reopened.markUp(B)
  t.same(reopened.live(), [B])
})

t.test('add is idempotent, and a known id at a new address is the same member, moved', async (t) => {
  const dir = await dataDir(t)
  const m = await Membership.open(dir)
  await m.add(A, '127.0.0.1:7421')
  m.markUp(A, { files: 3, bytes: 300, free: 1000 })
  m.markDown(A)
  await m.add(A, '127.0.0.1:7421')
  t.equal(m.all().length, 1, 'one entry')
  t.match(m.all()[0], { id: A, address: '127.0.0.1:7421', up: true, files: 3 }, 'a rejoin marks it up again and keeps what it last reported')
  // The case: a mirror restarted with --advertise localhost:PORT instead of 127.0.0.1:PORT.
  await m.add(A, 'localhost:7421')
  t.same(m.live(), [A], 'still one member')
  t.equal(m.resolve(A), 'localhost:7421', 'dialled at its new address')
  t.same((await persisted(dir)).mirrors, [{ id: A, address: 'localhost:7421' }], 'the new address is what persists')
  t.same((await Membership.open(dir)).all().map((s) => s.address), ['localhost:7421'])
})

t.test('resolve, addressOf and find: ids to addresses, addresses to members', async (t) => {
  const m = await Membership.open(await dataDir(t))
  await m.add(A, '127.0.0.1:7421')
  t.equal(m.resolve(A), '127.0.0.1:7421')
  t.equal(m.resolve('10.0.0.9:7420'), '10.0.0.9:7420', 'an address (a joining node) is dialled as it is')
  t.throws(() => m.resolve(B), { code: 'UNREACHABLE', message: /not a mirror of this cluster/ }, 'an id that is no member is never dialled as a host name')
  t.equal(m.addressOf(A), '127.0.0.1:7421')
  t.equal(m.addressOf(B), B, 'an unknown id is shown as itself')
  t.equal(m.find(A)?.id, A, 'by id')
  t.equal(m.find('127.0.0.1:7421')?.id, A, 'by address')
  t.equal(m.find('127.0.0.1:9'), undefined)
})

t.test('remove: the id is forgotten for good, and persists as removed', async (t) => {
  const dir = await dataDir(t)
  const m = await Membership.open(dir)
  await m.add(A, '127.0.0.1:7421')
  await m.add(B, '127.0.0.1:7422')
  await m.remove(A)
  t.same(m.all().map((s) => s.id), [B])
  t.ok(m.isRemoved(A))
  t.notOk(m.has(A))
  t.notOk(m.isRemoved(B))
  await t.rejects(m.add(A, '127.0.0.1:7421'), { code: 'USAGE', message: /removed from this cluster/ }, 'its joins are refused')
  t.same(await persisted(dir), { mirrors: [{ id: B, address: '127.0.0.1:7422' }], removed: [A] })
  const reopened = await Membership.open(dir)
  t.ok(reopened.isRemoved(A), 'still removed after a restart')
  t.same(reopened.all().map((s) => s.id), [B])
})

t.test('a cluster.json from before node ids is ignored, with a warning', async (t) => {
  const dir = await dataDir(t)
  await writeFile(join(dir, 'cluster.json'), JSON.stringify({ mirrors: ['127.0.0.1:7421'] }))
  const warnings: object[] = []
  const m = await Membership.open(dir, { warn: (obj) => warnings.push(obj) })
  t.same(m.all(), [], 'no member without an id: it joins again at its start')
  t.match(warnings, [{ entry: '127.0.0.1:7421' }])
  await m.add(A, '127.0.0.1:7421')
  t.same((await persisted(dir)).mirrors, [{ id: A, address: '127.0.0.1:7421' }], 'rewritten in the new format')
})

t.test('markUp / markDown', async (t) => {
  const dir = await dataDir(t)
  const m = await Membership.open(dir)
  await m.add(A, 'a:1')
  await m.add(B, 'b:2')
  m.markDown(A)
  t.same(m.live(), [B], 'a down mirror is not live')
  t.match(m.all(), [{ id: A, up: false }, { id: B, up: true }], 'but still known')
  const before = m.all()[0]!.lastSeen!
  await new Promise((resolve) => setTimeout(resolve, 5))
  m.markUp(A, { files: 2, bytes: 2048, free: 1e9 })
  t.same(m.live(), [A, B])
  t.match(m.all()[0], { address: 'a:1', up: true, files: 2, bytes: 2048, free: 1e9 }, 'the heartbeat figures are kept')
  t.ok(m.all()[0]!.lastSeen! > before, 'lastSeen moves on with a heartbeat')
  m.markDown(A, B)
  t.match(m.all()[0], { up: false, files: 2, answeredAs: B }, 'down keeps the last figures, and who answered instead')
  m.markUp(A)
  t.equal(m.all()[0]!.answeredAs, undefined, 'forgotten once the right node answers again')
  const nobody = randomUUID()
  m.markUp(nobody)
  m.markDown(nobody)
  t.same(
    m.all().map((s) => s.id),
    [A, B],
    'a heartbeat about an unknown id adds nothing',
  )
  t.same((await persisted(dir)).mirrors.map((e) => e.id), [A, B], 'liveness is not written to disk')
})

// add() computes the list, then awaits writeFileDurable; two adds in flight write [a] and [a, b] through separate
// temp files and whichever rename lands last wins, so cluster.json can end up missing a mirror that is live in
// memory. After a restart the primary then never pings that mirror again (mirrors join only at their start).
t.test('mirrors that join at the same moment are all persisted', async (t) => {
  // Two mirrors started together join within milliseconds; each add() writes the whole list, so the writes race.
  for (let round = 0; round < 20; round++) {
    const dir = join(await dataDir(t), String(round))
    await mkdir(join(dir, 'tmp'), { recursive: true })
    const m = await Membership.open(dir)
    const ids = Array.from({ length: 4 }, () => randomUUID())
    await Promise.all(ids.map((id, i) => m.add(id, `127.0.0.1:${7421 + i}`)))
    t.same(m.live(), ids, `round ${round}: all live in memory`)
    const onDisk = (await persisted(dir)).mirrors.map((e) => e.id)
    t.same(onDisk.sort(), [...ids].sort(), `round ${round}: all in cluster.json`)
    if (onDisk.length !== ids.length) break
  }
})

t.test('an unreadable cluster.json stops the node rather than forgetting its mirrors', async (t) => {
  const dir = await dataDir(t)
  await writeFile(join(dir, 'cluster.json'), '{"mirrors": [')
  await t.rejects(Membership.open(dir), SyntaxError)
})

t.test('downFor: 0 while up; since the last answered heartbeat once down; since opening if never heard from', async (t) => {
  const dir = await dataDir(t)
  const m = await Membership.open(dir)
  await m.add(A, '127.0.0.1:7421')
  await m.add(B, '127.0.0.1:7422')
  t.equal(m.downFor(A), 0, 'up')
  const seen = Date.parse(m.all()[0]!.lastSeen!)
  m.markDown(A)
  t.equal(m.downFor(A, seen + 5_000), 5_000, 'counted from the last heartbeat it answered')

  const opened = Date.now()
  const reopened = await Membership.open(dir)
  const later = Date.now() + 60_000
  const since = reopened.downFor(B, later)
  t.ok(since <= later - opened && since >= 60_000, `never heard from since opening: ${since} ms`)
  // A record may name a mirror cluster.json no longer lists (restored from an older backup): not held for ever.
  const unknown = randomUUID()
  t.equal(reopened.downFor(unknown, later), since, 'an unknown id is down since opening, like one never heard from')
  t.ok(reopened.downFor(unknown, later + 600_000) >= 660_000, 'and so outlives any grace')
})
