import { join } from 'node:path'
import { DepositoError } from '../protocol/errors.js'
import { readJsonIfExists, writeFileDurable } from '../store/durable-fs.js'
import { KeyedMutex } from '../store/keyed-mutex.js'

/**
 * The mirrors a primary knows, keyed by node id: an address is only where a mirror was last found, and a mirror
 * that comes back under another address (or another spelling of it) is the same member, never a second one. The
 * list and the ids removed for good survive restarts (`DATA/cluster.json`, written atomically); whether each is up
 * is learned afresh from heartbeats, so a restarted primary treats every mirror as down until it answers once.
 */
export interface MirrorStatus {
  id: string
  address: string
  up: boolean
  /** ISO time of the last heartbeat answered. */
  lastSeen?: string
  /** What the mirror said about itself in its last heartbeat. */
  files?: number
  bytes?: number
  free?: number
  /** The node that last answered at this mirror's address instead of it (so the mix-up is logged once). */
  answeredAs?: string
}

interface Saved {
  mirrors?: unknown[]
  removed?: string[]
}

const NODE_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

export class Membership {
  readonly #file: string
  readonly #tmp: string
  readonly #mirrors = new Map<string, MirrorStatus>()
  readonly #removed = new Set<string>()
  readonly #mutex = new KeyedMutex()
  /** A mirror never heard from since our start has been down, as far as we know, since then. */
  readonly #openedAt = Date.now()

  private constructor(dataDir: string) {
    this.#file = join(dataDir, 'cluster.json')
    this.#tmp = join(dataDir, 'tmp')
  }

  /**
   * A cluster.json from before node ids (a plain list of addresses) is ignored, with a warning: its mirrors
   * re-join with their ids at their next start.
   */
  static async open(dataDir: string, log?: { warn(obj: object, msg: string): void }): Promise<Membership> {
    const membership = new Membership(dataDir)
    const saved = await readJsonIfExists<Saved>(membership.#file)
    for (const entry of saved?.mirrors ?? []) {
      const { id, address } = (entry ?? {}) as Partial<MirrorStatus>
      if (typeof id === 'string' && typeof address === 'string') membership.#mirrors.set(id, { id, address, up: false })
      else log?.warn({ entry }, 'ignoring a mirror without a node id in cluster.json (it joins again at its next start)')
    }
    for (const id of saved?.removed ?? []) membership.#removed.add(id)
    return membership
  }

  /**
   * Registers mirror `id` at `address`; it counts as up since it has just spoken to us. A known id at a new
   * address is the same member, moved.
   */
  async add(id: string, address: string): Promise<void> {
    if (this.#removed.has(id)) throw new DepositoError('USAGE', `node ${id} was removed from this cluster; wipe its data dir to join again`)
    const known = this.#mirrors.get(id)
    this.#mirrors.set(id, { ...known, id, address, up: true, lastSeen: new Date().toISOString(), answeredAs: undefined })
    if (known?.address !== address) await this.#save()
  }

  /** Forgets mirror `id` for good: it is listed as removed, so it can never join again under that id. */
  async remove(id: string): Promise<void> {
    this.#mirrors.delete(id)
    this.#removed.add(id)
    await this.#save()
  }

  isRemoved(id: string): boolean {
    return this.#removed.has(id)
  }

  has(id: string): boolean {
    return this.#mirrors.has(id)
  }

  /** A member by node id, or else by the address it was last found at. */
  find(node: string): MirrorStatus | undefined {
    return this.#mirrors.get(node) ?? this.all().find((m) => m.address === node)
  }

  /**
   * Where to dial `node` now: a member's current address. Anything that is not a node id is taken for an address
   * (a joining node, not a member yet). An id that is not a member cannot be dialled: read as an address, it
   * would send a DNS lookup for a UUID.
   */
  resolve(node: string): string {
    const member = this.#mirrors.get(node)
    if (member) return member.address
    if (NODE_ID.test(node)) throw new DepositoError('UNREACHABLE', `node ${node} is not a mirror of this cluster; no address is known for it`)
    return node
  }

  /** The address a client is shown for mirror `id` (the id itself if none is known). */
  addressOf(id: string): string {
    return this.#mirrors.get(id)?.address ?? id
  }

  /** Writes the lists as they stand when the write runs; writes are serialised so joins at once all persist. */
  async #save(): Promise<void> {
    await this.#mutex.run('file', async () => {
      const mirrors = this.all().map(({ id, address }) => ({ id, address }))
      await writeFileDurable(this.#file, JSON.stringify({ mirrors, removed: [...this.#removed] }, null, 2) + '\n', this.#tmp)
    })
  }

  all(): MirrorStatus[] {
    return [...this.#mirrors.values()]
  }

  /** Ids of the mirrors up at the last heartbeat. */
  live(): string[] {
    return this.all()
      .filter((m) => m.up)
      .map((m) => m.id)
  }

  /**
   * How long a mirror has been down (0 while up): since its last answered heartbeat, or since our start. An id we
   * do not know (a record naming a mirror that cluster.json lost) is down since our start too: were it "never
   * down", its copies would count for ever and their files never regain their count.
   */
  downFor(id: string, now = Date.now()): number {
    const mirror = this.#mirrors.get(id)
    if (!mirror) return now - this.#openedAt
    if (mirror.up) return 0
    return now - (mirror.lastSeen ? Date.parse(mirror.lastSeen) : this.#openedAt)
  }

  markUp(id: string, stats: Pick<MirrorStatus, 'files' | 'bytes' | 'free'> = {}): void {
    const mirror = this.#mirrors.get(id)
    if (mirror) Object.assign(mirror, stats, { up: true, lastSeen: new Date().toISOString(), answeredAs: undefined })
  }

  /** `answeredAs`: another node answered at its address (the mirror moved, or the address was reused). */
  markDown(id: string, answeredAs?: string): void {
    const mirror = this.#mirrors.get(id)
    if (!mirror) return
    mirror.up = false
    if (answeredAs !== undefined) mirror.answeredAs = answeredAs
  }
}
