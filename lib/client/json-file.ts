import { mkdir, open, readFile, rm, stat } from 'node:fs/promises'
import { dirname } from 'node:path'
import { writeFileDurable } from '../store/durable-fs.js'

/**
 * A small JSON object in the client's home (ids.json, known_servers.json), readable by the user alone. Many
 * client processes may update it at once (a script depositing in parallel): every read-modify-write runs under a
 * lock file beside it, so none overwrites another's entry; a lock left by a killed process is broken when stale.
 */
export class JsonFile<T> {
  readonly #dir: string

  constructor(readonly path: string) {
    this.#dir = dirname(path)
  }

  async read(): Promise<Record<string, T>> {
    try {
      return JSON.parse(await readFile(this.path, 'utf8')) as Record<string, T>
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {}
      throw err
    }
  }

  /** Runs `change` on the current entries under the lock; writes them back if it returns a new object. */
  async update<R>(change: (entries: Record<string, T>) => { entries?: Record<string, T>; result: R }): Promise<R> {
    return this.#locked(async () => {
      const { entries, result } = change(await this.read())
      if (entries) await writeFileDurable(this.path, JSON.stringify(entries, null, 2) + '\n', this.#dir, 0o600)
      return result
    })
  }

  async #locked<R>(section: () => Promise<R>): Promise<R> {
    await mkdir(this.#dir, { recursive: true, mode: 0o700 })
    const lock = `${this.path}.lock`
    for (let attempt = 0; ; attempt++) {
      try {
        await (await open(lock, 'wx', 0o600)).close()
        break
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
        const age = Date.now() - (await stat(lock).catch(() => ({ mtimeMs: Date.now() }))).mtimeMs
        if (age > STALE_LOCK_MS || attempt > 200) await rm(lock, { force: true })
        else await new Promise((resolve) => setTimeout(resolve, 10))
      }
    }
    try {
      return await section()
    } finally {
      await rm(lock, { force: true })
    }
  }
}

const STALE_LOCK_MS = 5_000
