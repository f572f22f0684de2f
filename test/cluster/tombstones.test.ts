import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import pino from 'pino'
import t, { type Test } from 'tap'
import type { Membership } from '../../lib/cluster/membership.js'
import type { PeerClient } from '../../lib/cluster/peer-client.js'
import { retireCopies, retryTombstones, Tombstones, type RetireDeps, type Tombstone } from '../../lib/cluster/tombstones.js'
import type { FileInfo } from '../../lib/protocol/replies.js'
import type { BlobStore } from '../../lib/store/blob-store.js'

// Tombstones on disk, and the drops they stand for, against fake mirrors: which mirror is asked, with which
// version, and what is kept for later.

const OWNER = '0c1f6c8e-3f1e-4d5b-9b5e-2f8a7c6d5e4f'
const V1 = '1'.repeat(64)
const V2 = '2'.repeat(64)

async function setup(t: Test, { live = ['m1'], failing = [] as string[], records = new Map<string, FileInfo>(), members = ['m1', 'm2', 'm3'] } = {}) {
  const dir = t.testdir({ tmp: {} })
  const tombstones = await Tombstones.open(dir)
  const drops: Record<string, string | number | undefined>[] = []
  const peers = {
    async request(mirror: string, fields: Record<string, string | number | undefined>) {
      if (failing.includes(mirror)) throw new Error('connection refused')
      drops.push({ mirror, ...fields })
      return { status: 'ok', removido: '1' }
    },
  } as unknown as PeerClient
  const membership = { live: () => live, has: (id: string) => members.includes(id) } as unknown as Membership
  const store = { hasClient: (id: string) => id === OWNER, stat: (_o: string, name: string) => records.get(name) } as unknown as BlobStore
  const deps: RetireDeps = { store, peers, membership, tombstones, log: pino({ level: 'silent' }) }
  return { dir, deps, tombstones, drops }
}

t.test('tombstones persist atomically and survive a reopen; removing one rewrites the file', async (t) => {
  const { dir, tombstones } = await setup(t)
  const a: Tombstone = { owner: OWNER, name: 'a', sha256: V1, mirror: 'm1' }
  const b: Tombstone = { owner: OWNER, name: 'b', sha256: V2, mirror: 'm2' }
  await tombstones.add([a, b, { ...a }])
  t.same(tombstones.all(), [a, b], 'the same tombstone twice is kept once')
  t.same((await Tombstones.open(dir)).all(), [a, b], 'reopened from DATA/tombstones.json')
  await tombstones.remove(a)
  await tombstones.remove(a)
  t.same((JSON.parse(await readFile(join(dir, 'tombstones.json'), 'utf8')) as { copies: Tombstone[] }).copies, [b])
  t.same((await Tombstones.open(join(dir, 'nowhere'))).all(), [], 'no file: no tombstones')
})

t.test('retireCopies drops a version at once where it can and tombstones the rest', async (t) => {
  const { deps, tombstones, drops } = await setup(t, { live: ['m1', 'm2'], failing: ['m2'] })
  await retireCopies(deps, OWNER, 'f', V1, ['m1', 'm2', 'm3'])
  t.same(drops, [{ mirror: 'm1', op: 'drop', id_cliente: OWNER, nome_arquivo: 'f', hash_arquivo: V1 }], 'm1 (live) is asked for that version only')
  t.same(
    tombstones.all().map((x) => x.mirror).sort(),
    ['m2', 'm3'],
    'm2 failed and m3 is down: both kept for later',
  )
  await retireCopies(deps, OWNER, 'f', V1, [])
  t.equal(tombstones.all().length, 2, 'nothing to retire changes nothing')
})

t.test('retryTombstones carries out those whose mirror is live, and spares a copy the record places there', async (t) => {
  const records = new Map<string, FileInfo>([['again', { name: 'again', size: 1, sha256: V1, replicas: 1, storedAt: 'x', mirrors: ['m1'] }]])
  const { deps, tombstones, drops } = await setup(t, { live: ['m1', 'm3'], failing: ['m3'], records })
  const gone: Tombstone = { owner: OWNER, name: 'gone', sha256: V1, mirror: 'm1' }
  const wanted: Tombstone = { owner: OWNER, name: 'again', sha256: V1, mirror: 'm1' }
  const older: Tombstone = { owner: OWNER, name: 'again', sha256: V2, mirror: 'm1' }
  const down: Tombstone = { owner: OWNER, name: 'gone', sha256: V1, mirror: 'm2' }
  const failing: Tombstone = { owner: OWNER, name: 'gone', sha256: V1, mirror: 'm3' }
  const stranger: Tombstone = { owner: '9c1f6c8e-3f1e-4d5b-9b5e-2f8a7c6d5e4f', name: 'x', sha256: V1, mirror: 'm1' }
  await tombstones.add([gone, wanted, older, down, failing, stranger])
  await retryTombstones(deps)
  t.same(
    drops.map((d) => [d.nome_arquivo, d.hash_arquivo]),
    [
      ['gone', V1],
      ['again', V2],
      ['x', V1],
    ],
    'dropped: the deleted file, the older version of a name re-deposited since, a file of an owner the primary forgot',
  )
  t.same(
    tombstones.all(),
    [wanted, down, failing],
    'kept: the one whose copy the record names (wanted again, or about to be forgotten), the one on a mirror still down, the one whose drop failed',
  )
})

t.test('retryTombstones clears, without a drop, those naming a mirror that is no member (removed, or pre-identity)', async (t) => {
  const { deps, tombstones, drops } = await setup(t, { live: ['m1'], members: ['m1'] })
  const removed: Tombstone = { owner: OWNER, name: 'gone', sha256: V1, mirror: 'm2' }
  const kept: Tombstone = { owner: OWNER, name: 'gone', sha256: V1, mirror: 'm1' }
  await tombstones.add([removed, kept])
  await retryTombstones(deps)
  t.same(drops.map((d) => d.mirror), ['m1'], 'only the member is asked')
  t.same(tombstones.all(), [], 'both cleared')
})
