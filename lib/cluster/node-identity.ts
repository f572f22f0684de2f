import { join } from 'node:path'
import { v4 as uuidv4 } from 'uuid'
import { DepositoError } from '../protocol/errors.js'
import { parseNodeId } from '../protocol/values.js'
import { readJsonIfExists, writeFileDurable } from '../store/durable-fs.js'
import { KeyedMutex } from '../store/keyed-mutex.js'

/**
 * Who this data dir is, for ever: `DATA/node.json` holds a node id (UUID v4) made at first start, the node's
 * role, and on a mirror the primary it belongs to. Identity lives in the data dir, not in an address (as HDFS keeps
 * a DataNode's UUID in its storage): a mirror that comes back under another spelling of its address is the same
 * node, and a node can tell by id that an address it was told to join is itself.
 *
 * Roles only ever move one way, primary (or lone node) → mirror, and only by `--join` on a data dir that has
 * issued no client ids: a primary's files would otherwise be served by a node that takes no writes for them.
 */
export type NodeRole = 'primary' | 'mirror'

export interface PrimaryRef {
  /** The primary's node id, once a join has been answered (the mirror refuses any other primary after that). */
  id?: string
  address: string
}

interface Saved {
  id: string
  role: NodeRole
  primary?: PrimaryRef
}

export class NodeIdentity {
  readonly #file: string
  readonly #tmp: string
  #saved: Saved
  readonly #mutex = new KeyedMutex()

  private constructor(dataDir: string, saved: Saved) {
    this.#file = join(dataDir, 'node.json')
    this.#tmp = join(dataDir, 'tmp')
    this.#saved = saved
  }

  /** Reads `DATA/node.json`, or makes it (a new id, role primary) durably before anything answers under it. */
  static async open(dataDir: string): Promise<NodeIdentity> {
    const file = join(dataDir, 'node.json')
    const saved = await readJsonIfExists<Saved>(file)
    if (saved === undefined) {
      const identity = new NodeIdentity(dataDir, { id: uuidv4(), role: 'primary' })
      await identity.#write(identity.#saved)
      return identity
    }
    try {
      parseNodeId('id', String(saved.id))
      if (saved.role !== 'primary' && saved.role !== 'mirror') throw new Error(`unknown role ${JSON.stringify(saved.role)}`)
      if (saved.role === 'mirror' && typeof saved.primary?.address !== 'string') throw new Error('a mirror without a primary address')
    } catch (err) {
      throw new DepositoError('INTERNAL', `${file} is damaged (${(err as Error).message}); restore it from a backup`, { cause: err })
    }
    return new NodeIdentity(dataDir, saved)
  }

  get id(): string {
    return this.#saved.id
  }

  get role(): NodeRole {
    return this.#saved.role
  }

  /** On a mirror, the primary it belongs to (undefined on a primary). */
  get primary(): PrimaryRef | undefined {
    return this.#saved.primary
  }

  /** The cluster this node belongs to, named by its primary's id (undefined: a mirror that never joined). */
  get clusterId(): string | undefined {
    return this.role === 'primary' ? this.id : this.primary?.id
  }

  /**
   * `--join ADDRESS`: this node becomes (or stays) a mirror of the primary there, persisted before it listens,
   * so it refuses writes from its first second. A primary that has issued client ids cannot: its clients' only
   * copies are here.
   */
  async becomeMirrorOf(address: string, clients: number): Promise<void> {
    if (this.role === 'primary' && clients > 0) {
      throw new DepositoError('USAGE', `this data dir holds a primary's files (${clients} clients); give the mirror an empty --data`)
    }
    await this.#update((saved) => ({ ...saved, role: 'mirror', primary: { ...saved.primary, address } }))
  }

  /**
   * A join was answered by the primary `id`. The first answer is recorded; later ones must match, or this node
   * would serve two clusters. Returns whether `id` is this node's primary.
   */
  async acceptPrimary(id: string): Promise<boolean> {
    await this.#update((saved) => (saved.primary!.id === undefined ? { ...saved, primary: { ...saved.primary!, id } } : saved))
    return this.#saved.primary!.id === id
  }

  /** The primary said where it can be reached (its pings carry it): kept, so redirects and rejoins go there. */
  async updatePrimaryAddress(address: string): Promise<void> {
    await this.#update((saved) => (saved.primary!.address === address ? saved : { ...saved, primary: { ...saved.primary!, address } }))
  }

  /**
   * Read, change and write under one lock, and in that order: what the node acts on is always on disk already,
   * and two changes at once (a join reply and a ping) cannot lose each other.
   */
  async #update(change: (saved: Saved) => Saved): Promise<void> {
    await this.#mutex.run('file', async () => {
      const next = change(this.#saved)
      if (next === this.#saved) return
      await this.#write(next)
      this.#saved = next
    })
  }

  async #write(saved: Saved): Promise<void> {
    await writeFileDurable(this.#file, JSON.stringify(saved, null, 2) + '\n', this.#tmp)
  }
}
