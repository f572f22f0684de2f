import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import pino from 'pino'
import t, { type Test } from 'tap'
import type { Membership } from '../../lib/cluster/membership.js'
import type { PeerClient } from '../../lib/cluster/peer-client.js'
import { retryTombstones, Tombstones, type Tombstone } from '../../lib/cluster/tombstones.js'
import type { BlobStore } from '../../lib/store/blob-store.js'

// retryTombstones writes the tombstones it cleared once per pass, and stops between tombstones when asked.

const OWNER = '0c1f6c8e-3f1e-4d5b-9b5e-2f8a7c6d5e4f'
const V1 = '1'.repeat(64)

async function setup(t: Test, count: number) {
  const dir = t.testdir({ tmp: {} })
  const tombstones = await Tombstones.open(dir)
  const list: Tombstone[] = Array.from({ length: count }, (_, i) => ({ owner: OWNER, name: `f${i}`, sha256: V1, mirror: 'm1' }))
  await tombstones.add(list)
  const drops: string[] = []
  let onDrop = () => {}
  const peers = {
    async request(_mirror: string, fields: Record<string, string>) {
      drops.push(fields.nome_arquivo!)
      onDrop()
      return { status: 'ok', removido: '1' }
    },
  } as unknown as PeerClient
  const store = { hasClient: () => false, stat: () => undefined } as unknown as BlobStore
  const membership = { live: () => ['m1'], has: () => true } as unknown as Membership
  const deps = { store, peers, membership, tombstones, log: pino({ level: 'silent' }) }
  const saved = async () => (JSON.parse(await readFile(join(dir, 'tombstones.json'), 'utf8')) as { copies: Tombstone[] }).copies
  return { dir, deps, tombstones, drops, saved, setOnDrop: (f: () => void) => (onDrop = f) }
}

t.test('every cleared tombstone goes in one write', async (t) => {
  const { deps, tombstones, drops, saved } = await setup(t, 5)
  let writes = 0
  const save = Tombstones.prototype.remove
  // Counted at the only door to the file for removals: one call with all five.
  t.teardown(() => (Tombstones.prototype.remove = save))
  Tombstones.prototype.remove = function (...list: Tombstone[]) {
    writes++
    return save.apply(this, list)
  }
  await retryTombstones(deps)
  t.equal(drops.length, 5, 'each stale copy dropped')
  t.equal(writes, 1, 'one save for the pass')
  t.same(tombstones.all(), [])
  t.same(await saved(), [], 'and that save holds none of them')
})

t.test('a stop between tombstones ends the retry; those cleared so far are still saved', async (t) => {
  const { deps, drops, saved, setOnDrop } = await setup(t, 5)
  let stop = false
  setOnDrop(() => {
    if (drops.length === 2) stop = true
  })
  await retryTombstones(deps, () => stop)
  t.same(drops, ['f0', 'f1'], 'no drop after the stop')
  t.same(
    (await saved()).map((x) => x.name),
    ['f2', 'f3', 'f4'],
    'the two carried out are off the file; the rest wait for the next pass',
  )
})
