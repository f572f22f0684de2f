import { join } from 'node:path'
import { readJsonIfExists, writeFileDurable } from '../store/durable-fs.js'
import { KeyedMutex } from '../store/keyed-mutex.js'

/**
 * The mirrors a primary knows: their addresses survive restarts (`DATA/cluster.json`, written atomically); whether
 * each is up is learned afresh from heartbeats, so a restarted primary treats every mirror as down until it
 * answers once.
 */
export interface MirrorStatus {
  address: string
  up: boolean
  /** ISO time of the last heartbeat answered. */
  lastSeen?: string
  /** What the mirror said about itself in its last heartbeat. */
  files?: number
  bytes?: number
  free?: number
}

export class Membership {
  readonly #file: string
  readonly #tmp: string
  readonly #mirrors = new Map<string, MirrorStatus>()
  readonly #mutex = new KeyedMutex()
  /** A mirror never heard from since our start has been down, as far as we know, since then. */
  readonly #openedAt = Date.now()

  private constructor(dataDir: string) {
    this.#file = join(dataDir, 'cluster.json')
    this.#tmp = join(dataDir, 'tmp')
  }

  static async open(dataDir: string): Promise<Membership> {
    const membership = new Membership(dataDir)
    const saved = await readJsonIfExists<{ mirrors: string[] }>(membership.#file)
    for (const address of saved?.mirrors ?? []) membership.#mirrors.set(address, { address, up: false })
    return membership
  }

  /** Registers a mirror (idempotent); it counts as up since it has just spoken to us. */
  async add(address: string): Promise<void> {
    const known = this.#mirrors.has(address)
    this.#mirrors.set(address, { ...this.#mirrors.get(address), address, up: true, lastSeen: new Date().toISOString() })
    if (!known) await this.#mutex.run('file', () => this.#save())
  }

  /** Writes the list as it stands when the write runs; writes are serialised so joins at once all persist. */
  async #save(): Promise<void> {
    await writeFileDurable(this.#file, JSON.stringify({ mirrors: [...this.#mirrors.keys()] }, null, 2) + '\n', this.#tmp)
  }

  all(): MirrorStatus[] {
    return [...this.#mirrors.values()]
  }

  live(): string[] {
    return this.all()
      .filter((m) => m.up)
      .map((m) => m.address)
  }

  /**
   * How long a mirror has been down (0 while up): since its last answered heartbeat, or since our start. An
   * address we do not know (a record naming a mirror that cluster.json lost) is down since our start too: were it
   * "never down", its copies would count for ever and their files never regain their count.
   */
  downFor(address: string, now = Date.now()): number {
    const mirror = this.#mirrors.get(address)
    if (!mirror) return now - this.#openedAt
    if (mirror.up) return 0
    return now - (mirror.lastSeen ? Date.parse(mirror.lastSeen) : this.#openedAt)
  }

  markUp(address: string, stats: Pick<MirrorStatus, 'files' | 'bytes' | 'free'> = {}): void {
    const mirror = this.#mirrors.get(address)
    if (mirror) Object.assign(mirror, stats, { up: true, lastSeen: new Date().toISOString() })
  }

  markDown(address: string): void {
    const mirror = this.#mirrors.get(address)
    if (mirror) mirror.up = false
  }
}
