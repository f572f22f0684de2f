import { homedir } from 'node:os'
import { join } from 'node:path'
import { readJsonIfExists, writeFileDurable } from '../store/durable-fs.js'
import { withFileLock } from './file-lock.js'

/**
 * Remembers the id each server issued, in `$DEPOSITO_HOME/ids.json` (default `~/.config/deposito`), readable by
 * the user alone: the id is the only key to a client's files. Ids are kept per cluster (`cluster:<primary's node
 * id>`), so every spelling of every node's address finds the same id; servers older than node ids name no
 * cluster, and their ids stay keyed by the address, as they always were.
 */
export function defaultHome(env: NodeJS.ProcessEnv = process.env): string {
  return env.DEPOSITO_HOME ?? join(homedir(), '.config', 'deposito')
}

/** Where an id is saved: by cluster when the server names one, else by the address it was reached at. */
export interface IdKey {
  cluster?: string
  legacy: string
}

export function clusterKey(cluster: string): string {
  return `cluster:${cluster}`
}

/** The entry a new id is saved under. */
export function savedKey(where: IdKey): string {
  return where.cluster === undefined ? where.legacy : clusterKey(where.cluster)
}

export class IdentityFile {
  readonly path: string

  constructor(readonly home: string) {
    this.path = join(home, 'ids.json')
  }

  async #read(): Promise<Record<string, string>> {
    return (await readJsonIfExists<Record<string, string>>(this.path)) ?? {}
  }

  async get(server: string): Promise<string | undefined> {
    return (await this.#read())[server]
  }

  /**
   * The id saved for a cluster, else for `legacy` (the address it was saved under before clusters had ids), which
   * is then copied under the cluster's key. The address entry stays: an older client may still read it.
   */
  async lookup(where: IdKey): Promise<string | undefined> {
    const ids = await this.#read()
    if (where.cluster === undefined) return ids[where.legacy]
    const key = clusterKey(where.cluster)
    if (ids[key]) return ids[key]
    const legacy = ids[where.legacy]
    return legacy === undefined ? undefined : this.claim(key, legacy)
  }

  async set(server: string, id: string): Promise<void> {
    await this.#locked(async () => {
      const ids = { ...(await this.#read()), [server]: id }
      await writeFileDurable(this.path, JSON.stringify(ids, null, 2) + '\n', this.home, 0o600)
    })
  }

  /**
   * Saves `id` for `server` unless another client process saved one first, and returns the id that stands. Many
   * first runs at once (a script depositing in parallel) must end up sharing one id, not each keeping its own.
   */
  async claim(server: string, id: string): Promise<string> {
    return this.#locked(async () => {
      const ids = await this.#read()
      if (ids[server]) return ids[server]
      await writeFileDurable(this.path, JSON.stringify({ ...ids, [server]: id }, null, 2) + '\n', this.home, 0o600)
      return id
    })
  }

  #locked<T>(section: () => Promise<T>): Promise<T> {
    return withFileLock(this.home, this.path, section)
  }
}
