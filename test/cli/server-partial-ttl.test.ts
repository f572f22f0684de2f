import { randomUUID } from 'node:crypto'
import { mkdir, readdir, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { runServerToExit, startServerProcess } from '../helpers/bins.js'
import { byMsg, waitForLog } from '../helpers/cluster.js'

// `bin/server --partial-ttl SECONDS`: partial uploads idle longer are swept, at start and on a timer.

t.test('--partial-ttl: a partial idle longer is swept at start, a fresh one a moment later', async (t) => {
  const dataDir = join(t.testdir(), 'data')
  const owner = randomUUID()
  const dir = join(dataDir, 'partials', owner)
  await mkdir(dir, { recursive: true })
  const [stale, fresh] = [randomUUID(), randomUUID()]
  for (const token of [stale, fresh]) await writeFile(join(dir, token), 'bytes')
  const long = new Date(Date.now() - 60_000)
  await utimes(join(dir, stale), long, long)
  const server = await startServerProcess(t, { dataDir, args: ['--partial-ttl', '2'] })
  t.same(await readdir(dir), [fresh], 'the stale one went before the server listened')
  // Swept every ttl/4 = 0.5 s; the fresh one is 2 s old within a few of those.
  const [entry] = await waitForLog(server, (e) => byMsg('partial upload expired')(e) && (e as { upload?: string }).upload === fresh)
  t.ok(entry)
  t.same(await readdir(dir), [])
})

t.test('--partial-ttl takes whole seconds from 1', async (t) => {
  const { code, stderr } = await runServerToExit(['--partial-ttl', '0'])
  t.equal(code, 2)
  t.match(stderr, /--partial-ttl/)
})
