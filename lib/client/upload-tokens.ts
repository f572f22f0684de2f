import { join } from 'node:path'
import { readJsonIfExists, writeFileDurable } from '../store/durable-fs.js'
import { withFileLock } from './file-lock.js'

/**
 * The upload tokens of resumable deposits still in flight, in `$DEPOSITO_HOME/uploads.json` (0600, locked like
 * ids.json). A token is found again only by the very same deposit: same cluster, client id, name, absolute path,
 * size and mtime; a file touched since is another deposit, whose bytes must not be appended to the old prefix.
 */
export interface UploadKey {
  /** The cluster id, or the address for servers older than node ids. */
  cluster: string
  clientId: string
  name: string
  /** Absolute path of the local file. */
  path: string
  size: number
  mtimeMs: number
}

export function uploadKey(k: UploadKey): string {
  return JSON.stringify([k.cluster, k.clientId, k.name, k.path, k.size, k.mtimeMs])
}

export class UploadTokens {
  readonly path: string

  constructor(readonly home: string) {
    this.path = join(home, 'uploads.json')
  }

  async #read(): Promise<Record<string, string>> {
    return (await readJsonIfExists<Record<string, string>>(this.path)) ?? {}
  }

  async get(key: UploadKey): Promise<string | undefined> {
    return (await this.#read())[uploadKey(key)]
  }

  /** Saved durably before the first byte is sent, so a crash of this process still finds the partial. */
  async save(key: UploadKey, token: string): Promise<void> {
    await this.#update((all) => ({ ...all, [uploadKey(key)]: token }))
  }

  async remove(key: UploadKey): Promise<void> {
    await this.#update((all) => {
      const { [uploadKey(key)]: _gone, ...rest } = all
      return rest
    })
  }

  async #update(change: (all: Record<string, string>) => Record<string, string>): Promise<void> {
    await withFileLock(this.home, this.path, async () => {
      const next = change(await this.#read())
      await writeFileDurable(this.path, JSON.stringify(next, null, 2) + '\n', this.home, 0o600)
    })
  }
}
