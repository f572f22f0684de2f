import { join } from 'node:path'
import type { Logger } from 'pino'
import type { BlobStore } from '../store/blob-store.js'
import { readJsonIfExists, writeFileDurable } from '../store/durable-fs.js'
import { KeyedMutex } from '../store/keyed-mutex.js'
import type { Membership } from './membership.js'
import type { PeerClient } from './peer-client.js'
import { clientTag } from '../protocol/client-tag.js'

/**
 * Copies the primary wants gone from a mirror it could not reach at the time (a delete, a smaller count, a
 * replaced version, a copy forgotten while its mirror was down). Each names one version (owner, name, sha256) on
 * one mirror, survives restarts in `DATA/tombstones.json` (written atomically, like cluster.json), and is retried
 * by the repair pass until the mirror answers. Only named versions are ever removed: a primary that lost its data
 * dir has no tombstones, so it can never wipe its mirrors, and a newer deposit of the same name is spared.
 */
export interface Tombstone {
  owner: string
  name: string
  sha256: string
  /** The mirror's node id. */
  mirror: string
}

const keyOf = (t: Tombstone) => JSON.stringify([t.owner, t.name, t.sha256, t.mirror])

export class Tombstones {
  readonly #file: string
  readonly #tmp: string
  readonly #entries = new Map<string, Tombstone>()
  readonly #mutex = new KeyedMutex()

  private constructor(dataDir: string) {
    this.#file = join(dataDir, 'tombstones.json')
    this.#tmp = join(dataDir, 'tmp')
  }

  static async open(dataDir: string): Promise<Tombstones> {
    const tombstones = new Tombstones(dataDir)
    const saved = await readJsonIfExists<{ copies: Tombstone[] }>(tombstones.#file)
    for (const t of saved?.copies ?? []) tombstones.#entries.set(keyOf(t), t)
    return tombstones
  }

  all(): Tombstone[] {
    return [...this.#entries.values()]
  }

  async add(list: Tombstone[]): Promise<void> {
    for (const t of list) this.#entries.set(keyOf(t), t)
    await this.#save()
  }

  /** Clears several with one write (a pass may clear hundreds once a mirror is back). */
  async remove(...list: Tombstone[]): Promise<void> {
    let changed = false
    for (const t of list) changed = this.#entries.delete(keyOf(t)) || changed
    if (changed) await this.#save()
  }

  /** Writes the set as it stands when the write runs; serialised so concurrent changes all persist. */
  async #save(): Promise<void> {
    await this.#mutex.run('file', () => writeFileDurable(this.#file, JSON.stringify({ copies: this.all() }, null, 2) + '\n', this.#tmp))
  }
}

export interface RetireDeps {
  store: BlobStore
  peers: PeerClient
  membership: Membership
  tombstones: Tombstones
  log: Logger
}

/** Asks a mirror to drop one version; resolves with whether it held it. */
export async function dropCopy(peers: PeerClient, t: Tombstone): Promise<boolean> {
  const reply = await peers.request(t.mirror, { op: 'drop', id_cliente: t.owner, nome_arquivo: t.name, hash_arquivo: t.sha256 })
  return reply.removido === '1'
}

/**
 * Removes version `sha256` of a file from `mirrors`: at once on those that answer, by tombstone on the others
 * (down, or failing), for the repair pass to retry. A tombstone written ahead for a copy dropped here (a commit
 * remembers what it replaces before it does) is cleared.
 */
export async function retireCopies(deps: RetireDeps, owner: string, name: string, sha256: string, mirrors: string[]): Promise<void> {
  const live = deps.membership.live()
  const pending: Tombstone[] = []
  const dropped: Tombstone[] = []
  await Promise.all(
    mirrors.map(async (mirror) => {
      const t = { owner, name, sha256, mirror }
      try {
        if (live.includes(mirror)) {
          await dropCopy(deps.peers, t)
          dropped.push(t)
          return
        }
      } catch (err) {
        deps.log.warn({ mirror, name, err: (err as Error).message }, 'could not drop a copy from a mirror')
      }
      pending.push(t)
    }),
  )
  if (dropped.length > 0) await deps.tombstones.remove(...dropped)
  if (pending.length === 0) return
  await deps.tombstones.add(pending)
  deps.log.info({ name, sha256, mirrors: pending.map((t) => t.mirror) }, 'copies left to remove when their mirrors are back')
}

/**
 * The repair pass's part: every tombstone whose mirror is live is carried out and cleared; one whose mirror is no
 * member any more (removed, or named by a data dir from before node ids) is cleared without a drop. One whose
 * version the primary's record places on that mirror is left alone, neither dropped nor cleared, for as long as it
 * does: it may be re-replicated since, or (a tombstone is written before the record forgets the copy: a delete, a
 * commit replacing the version) the record may be about to change, and clearing it now would leave that copy to no
 * one. Cleared ones are
 * written out once, at the end (also when the pass stops early): a tombstone cleared but not yet written only
 * costs a repeated drop, which finds nothing and is harmless.
 */
export async function retryTombstones(deps: RetireDeps, stopped: () => boolean = () => false): Promise<void> {
  const live = deps.membership.live()
  const cleared: Tombstone[] = []
  try {
    for (const t of deps.tombstones.all()) {
      if (stopped()) return
      // A mirror removed from the cluster (or named by a data dir from before node ids) will never answer a drop.
      if (!deps.membership.has(t.mirror)) {
        cleared.push(t)
        continue
      }
      if (!live.includes(t.mirror)) continue
      const current = deps.store.hasClient(t.owner) ? deps.store.stat(t.owner, t.name) : undefined
      if (current?.sha256 === t.sha256 && current.mirrors?.includes(t.mirror)) continue
      try {
        const removed = await dropCopy(deps.peers, t)
        cleared.push(t)
        deps.log.info({ mirror: t.mirror, owner: clientTag(t.owner), name: t.name, sha256: t.sha256, removed }, 'stale copy removed from a mirror')
      } catch (err) {
        deps.log.warn({ mirror: t.mirror, name: t.name, err: (err as Error).message }, 'could not remove a stale copy yet')
      }
    }
  } finally {
    await deps.tombstones.remove(...cleared)
    if (cleared.length > 0) deps.log.info({ count: cleared.length }, 'tombstones cleared')
  }
}
