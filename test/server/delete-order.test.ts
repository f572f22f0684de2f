import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import t from 'tap'
import type { BlobStore } from '../../lib/store/blob-store.js'
import { inProcessCluster } from '../helpers/in-process-cluster.js'
import { startServer } from '../helpers/server.js'

// A delete retires the version's copies from every mirror before its record goes: a crash in between must never
// leave a copy on a mirror that no record or tombstone names (a failover read would serve the deleted file).

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex')

/** The primary dies the moment its record of a file is gone, whichever store call removed it. */
function crashAfterRecordRemoval(store: BlobStore): void {
  for (const method of ['delete', 'deleteRecordIf'] as const) {
    const remove = store[method].bind(store) as (...args: unknown[]) => Promise<unknown>
    store[method] = async (...args: unknown[]) => {
      await remove(...args)
      throw new Error('crash injected after the record removal')
    }
  }
}

const tombstonesOf = async (store: BlobStore) =>
  (JSON.parse(await readFile(join(store.layout.root, 'tombstones.json'), 'utf8').catch(() => '{"copies":[]}')) as { copies: { mirror: string }[] }).copies

t.test('a crash between a delete and its record leaves no copy that nothing will remove', async (t) => {
  // Before the crash, no repair pass (its reconcile could change the record mid-delete and move the crash point)
  // and no heartbeats: the stopped mirror is found unreachable by the delete's own drop, not by a ping.
  const { primary, mirrors, client, primaryOptions, mirrorOptions, addressOf, waitFor } = await inProcessCluster(t, { repairIntervalMs: 600_000, heartbeatIntervalMs: 60_000 })
  const body = Buffer.from('delete me, then crash')
  t.equal((await client.deposit(Readable.from([body]), { name: 'd', size: body.length, replicas: 2 })).mirrors.length, 2)
  const id = await client.id()
  const [live, down] = mirrors as [typeof primary, typeof primary]
  const downAddress = addressOf(down)
  await down.close(0)

  crashAfterRecordRemoval(primary.store)
  await t.rejects(client.delete('d'), /crash injected/)
  await primary.close(0)
  t.equal(live.store.stat(id, 'd'), undefined, 'the live mirror had dropped its copy before the record went')
  t.match(await tombstonesOf(primary.store), [{ mirror: down.identity.id }], 'the mirror that was down has a tombstone, by node id')

  const restarted = await startServer(t, { ...primaryOptions(), repairIntervalMs: 50, heartbeatIntervalMs: 20 })
  t.equal(restarted.store.stat(id, 'd'), undefined, 'the record is gone for good')
  const back = await startServer(t, mirrorOptions(1, Number(downAddress.split(':')[1])))
  t.equal(back.store.stat(id, 'd')?.sha256, sha(body), 'the mirror comes back with its copy')
  await waitFor('the restarted primary to carry out the tombstone', (e) => e.msg === 'stale copy removed from a mirror' && e.mirror === down.identity.id)
  t.equal(back.store.stat(id, 'd'), undefined, 'no mirror holds the deleted version')
})

t.test('a version deposited while a delete retires the old one is deleted too, from every mirror', async (t) => {
  const { primary, mirrors, client } = await inProcessCluster(t, { repairIntervalMs: 600_000, heartbeatIntervalMs: 60_000 })
  const [v1, v2] = [Buffer.from('version one'), Buffer.from('version two, deposited mid-delete')]
  await client.deposit(Readable.from([v1]), { name: 'd', size: v1.length, replicas: 1 })
  const id = await client.id()
  const remove = primary.store.deleteRecordIf.bind(primary.store)
  let raced = false
  primary.store.deleteRecordIf = async (owner, expected) => {
    if (!raced) {
      raced = true
      await client.deposit(Readable.from([v2]), { name: 'd', size: v2.length, replicas: 2 })
    }
    return remove(owner, expected)
  }
  const deleted = await client.delete('d')
  t.ok(raced, 'the deposit came between the retire and the removal')
  t.equal(deleted.sha256, sha(v2), 'the delete removed the version it found on its second round')
  t.equal(primary.store.stat(id, 'd'), undefined)
  for (const mirror of mirrors) t.equal(mirror.store.stat(id, 'd'), undefined, 'no mirror holds either version')
})

t.test('a record that keeps changing under a delete is BUSY after a bounded number of rounds, and stays', async (t) => {
  const { primary, client } = await inProcessCluster(t, { repairIntervalMs: 600_000, heartbeatIntervalMs: 60_000 }, 1)
  await client.deposit(Readable.from([Buffer.from('x')]), { name: 'd', size: 1, replicas: 1 })
  let rounds = 0
  primary.store.deleteRecordIf = async () => {
    rounds++
    return false
  }
  await t.rejects(client.delete('d'), { code: 'BUSY' })
  t.equal(rounds, 4)
  t.ok(primary.store.stat(await client.id(), 'd'), 'the record stays')
})
