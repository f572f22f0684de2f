import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { PassThrough, Readable } from 'node:stream'
import t from 'tap'
import { placeReplicas } from '../../lib/cluster/placement.js'
import { inProcessCluster } from '../helpers/in-process-cluster.js'
import { waitForEntry } from '../helpers/server.js'

// A commit supersedes whatever the name holds when it commits, which a racing deposit may have changed since this
// one read it: the version retired from the mirrors must be the one replaced, or it stays on them for ever.

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex')

t.test('two deposits racing over a name retire every superseded version from every mirror', async (t) => {
  // No repair pass during the test: only the deposits themselves may retire anything. No heartbeats either
  // (joining marked both mirrors up), so placement cannot change under load.
  const { primary, mirrors, client, addressOf } = await inProcessCluster(t, { repairIntervalMs: 600_000, heartbeatIntervalMs: 60_000 })
  const [a, b, c] = ['version A', 'version B, on two mirrors', 'version C, back to one'].map((s) => Buffer.from(s))
  await client.deposit(Readable.from([a]), { name: 'doc', size: a.length, replicas: 1 })
  const id = await client.id()

  // C reads the name (A) and opens its mirror, then waits mid-body while B commits on two mirrors.
  const source = new PassThrough()
  const depositC = client.deposit(source, { name: 'doc', size: c.length, replicas: 1 })
  source.write(c.subarray(0, 4))
  await waitForEntry(primary.store.layout.tmp)
  const doneB = await client.deposit(Readable.from([b]), { name: 'doc', size: b.length, replicas: 2 })
  t.equal(doneB.mirrors.length, 2, 'B went to both mirrors')
  source.end(c.subarray(4))
  const doneC = await depositC

  t.equal(primary.store.stat(id, 'doc')?.sha256, sha(c), 'C is the current version')
  const [first] = placeReplicas(id, 'doc', mirrors.map((m) => m.identity.id), 1)
  t.same(doneC.mirrors, [addressOf(mirrors.find((m) => m.identity.id === first)!)], 'C is on one mirror')
  for (const mirror of mirrors) {
    const held = mirror.store.stat(id, 'doc')?.sha256
    t.ok(held === undefined || held === sha(c), `${addressOf(mirror)} holds no superseded version`)
  }
  const tombstones = JSON.parse(await readFile(join(primary.store.layout.root, 'tombstones.json'), 'utf8').catch(() => '{"copies":[]}'))
  t.same(tombstones, { copies: [] }, 'both mirrors were live: the copy was dropped, and no tombstone is left over')
})

t.test('a crash right after a replacing commit still retires the replaced version: it was tombstoned first', async (t) => {
  // No heartbeats (joining marked both mirrors up): a ping timed out under load must not move a copy elsewhere.
  const { primary, mirrors, client, waitFor } = await inProcessCluster(t, { heartbeatIntervalMs: 60_000 })
  const [a, b] = [Buffer.from('version A, on both mirrors'), Buffer.from('version B, on one')]
  t.equal((await client.deposit(Readable.from([a]), { name: 'doc', size: a.length, replicas: 2 })).mirrors.length, 2)
  const id = await client.id()
  // The crash: the deposit ends the moment its record is replaced, before it retires anything.
  const commitUpload = primary.store.commitUpload.bind(primary.store)
  primary.store.commitUpload = async (...args) => {
    await commitUpload(...args)
    throw new Error('crash injected after the commit')
  }
  await t.rejects(client.deposit(Readable.from([b]), { name: 'doc', size: b.length, replicas: 1 }))
  t.equal(primary.store.stat(id, 'doc')?.sha256, sha(b), 'B was committed')
  const [kept] = primary.store.stat(id, 'doc')!.mirrors!
  const other = mirrors.find((m) => m.identity.id !== kept)!
  await waitFor('the repair pass to carry out the tombstone', (e) => e.msg === 'stale copy removed from a mirror' && e.mirror === other.identity.id)
  t.equal(other.store.stat(id, 'doc'), undefined, 'A is gone from the mirror B did not go to')
})
