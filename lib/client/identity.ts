import { mkdir, readFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { writeFileDurable } from '../store/durable-fs.js'

/**
 * Remembers the id each server issued, in `$DEPOSITO_HOME/ids.json` (default `~/.config/deposito`), readable by
 * the user alone: the id is the only key to a client's files. Ids are kept per server address because each
 * independent server issues its own.
 */
export function defaultHome(env: NodeJS.ProcessEnv = process.env): string {
  return env.DEPOSITO_HOME ?? join(homedir(), '.config', 'deposito')
}

export class IdentityFile {
  readonly path: string

  constructor(readonly home: string) {
    this.path = join(home, 'ids.json')
  }

  async #read(): Promise<Record<string, string>> {
    try {
      return JSON.parse(await readFile(this.path, 'utf8')) as Record<string, string>
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {}
      throw err
    }
  }

  async get(server: string): Promise<string | undefined> {
    return (await this.#read())[server]
  }

  async set(server: string, id: string): Promise<void> {
    const ids = { ...(await this.#read()), [server]: id }
    await mkdir(this.home, { recursive: true, mode: 0o700 })
    await writeFileDurable(this.path, JSON.stringify(ids, null, 2) + '\n', this.home, 0o600)
  }
}
