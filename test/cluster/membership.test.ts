import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { Membership } from '../../lib/cluster/membership.js'

/** The primary's list of mirrors (lib/cluster/membership.ts): addresses persist, liveness does not. */

/** A data dir as the server has it when Membership opens: BlobStore.open has already made DATA/tmp. */
async function dataDir(t: Test): Promise<string> {
  const dir = t.testdir()
  await mkdir(join(dir, 'tmp'), { recursive: true })
  return dir
}

async function persisted(dir: string): Promise<string[]> {
  return (JSON.parse(await readFile(join(dir, 'cluster.json'), 'utf8')) as { mirrors: string[] }).mirrors
}

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
  await m.add('127.0.0.1:7421')
  await m.add('127.0.0.1:7422')
  t.same(m.live(), ['127.0.0.1:7421', '127.0.0.1:7422'], 'both live right after joining')
  t.match(m.all(), [{ address: '127.0.0.1:7421', up: true, lastSeen: String }, { address: '127.0.0.1:7422', up: true }])
  t.same(await persisted(dir), ['127.0.0.1:7421', '127.0.0.1:7422'], 'cluster.json lists them')
  t.same(await readdir(join(dir, 'tmp')), [], 'no temp file left behind')

  const reopened = await Membership.open(dir)
  t.same(
    reopened.all().map((s) => [s.address, s.up]),
    [
      ['127.0.0.1:7421', false],
      ['127.0.0.1:7422', false],
    ],
    'after a restart: known, but down until a heartbeat answers',
  )
  t.same(reopened.live(), [])
  reopened.markUp('127.0.0.1:7422')
  t.same(reopened.live(), ['127.0.0.1:7422'])
})

t.test('add is idempotent', async (t) => {
  const dir = await dataDir(t)
  const m = await Membership.open(dir)
  await m.add('127.0.0.1:7421')
  m.markUp('127.0.0.1:7421', { files: 3, bytes: 300, free: 1000 })
  m.markDown('127.0.0.1:7421')
  await m.add('127.0.0.1:7421')
  t.equal(m.all().length, 1, 'one entry')
  t.match(m.all()[0], { address: '127.0.0.1:7421', up: true, files: 3 }, 'a rejoin marks it up again and keeps what it last reported')
  t.same(await persisted(dir), ['127.0.0.1:7421'])
  t.same((await Membership.open(dir)).all().map((s) => s.address), ['127.0.0.1:7421'])
})

t.test('markUp / markDown', async (t) => {
  const dir = await dataDir(t)
  const m = await Membership.open(dir)
  await m.add('a:1')
  await m.add('b:2')
  m.markDown('a:1')
  t.same(m.live(), ['b:2'], 'a down mirror is not live')
  t.match(m.all(), [{ address: 'a:1', up: false }, { address: 'b:2', up: true }], 'but still known')
  const before = m.all()[0]!.lastSeen!
  await new Promise((resolve) => setTimeout(resolve, 5))
  m.markUp('a:1', { files: 2, bytes: 2048, free: 1e9 })
  t.same(m.live(), ['a:1', 'b:2'])
  t.match(m.all()[0], { address: 'a:1', up: true, files: 2, bytes: 2048, free: 1e9 }, 'the heartbeat figures are kept')
  t.ok(m.all()[0]!.lastSeen! > before, 'lastSeen moves on with a heartbeat')
  m.markDown('a:1')
  t.match(m.all()[0], { up: false, files: 2 }, 'down keeps the last figures')
  m.markUp('nobody:9')
  m.markDown('nobody:9')
  t.same(
    m.all().map((s) => s.address),
    ['a:1', 'b:2'],
    'a heartbeat about an unknown address adds nothing',
  )
  t.same(await persisted(dir), ['a:1', 'b:2'], 'liveness is not written to disk')
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
    const addresses = Array.from({ length: 4 }, (_, i) => `127.0.0.1:${7421 + i}`)
    await Promise.all(addresses.map((a) => m.add(a)))
    t.same(m.live(), addresses, `round ${round}: all live in memory`)
    const onDisk = await persisted(dir)
    t.same(onDisk.sort(), addresses, `round ${round}: all in cluster.json`)
    if (onDisk.length !== addresses.length) break
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
  await m.add('127.0.0.1:7421')
  await m.add('127.0.0.1:7422')
  t.equal(m.downFor('127.0.0.1:7421'), 0, 'up')
  const seen = Date.parse(m.all()[0]!.lastSeen!)
  m.markDown('127.0.0.1:7421')
  t.equal(m.downFor('127.0.0.1:7421', seen + 5_000), 5_000, 'counted from the last heartbeat it answered')

  const opened = Date.now()
  const reopened = await Membership.open(dir)
  const later = Date.now() + 60_000
  const since = reopened.downFor('127.0.0.1:7422', later)
  t.ok(since <= later - opened && since >= 60_000, `never heard from since opening: ${since} ms`)
  // A record may name a mirror cluster.json no longer lists (restored from an older backup): not held for ever.
  t.equal(reopened.downFor('127.0.0.1:9999', later), since, 'an unknown address is down since opening, like one never heard from')
  t.ok(reopened.downFor('127.0.0.1:9999', later + 600_000) >= 660_000, 'and so outlives any grace')
})
