import { join } from 'node:path'
import { JsonFile } from './json-file.js'

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
  readonly #file: JsonFile<string>

  constructor(readonly home: string) {
    this.path = join(home, 'uploads.json')
    this.#file = new JsonFile(this.path)
  }

  async get(key: UploadKey): Promise<string | undefined> {
    return (await this.#file.read())[uploadKey(key)]
  }

  /** Saved durably before the first byte is sent, so a crash of this process still finds the partial. */
  async save(key: UploadKey, token: string): Promise<void> {
    await this.#file.update((all) => ({ entries: { ...all, [uploadKey(key)]: token }, result: undefined }))
  }

  async remove(key: UploadKey): Promise<void> {
    await this.#file.update((all) => {
      const { [uploadKey(key)]: _gone, ...rest } = all
      return { entries: rest, result: undefined }
    })
  }
}
