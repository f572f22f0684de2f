import { mkdir, open, rm, stat } from 'node:fs/promises'

/**
 * Serialises a read-modify-write of a small JSON file in `$DEPOSITO_HOME` across client processes (ids.json,
 * uploads.json): a lock file beside it, made with O_EXCL; one older than a few seconds is a crashed holder's
 * and is broken.
 */
export async function withFileLock<T>(home: string, path: string, section: () => Promise<T>): Promise<T> {
  await mkdir(home, { recursive: true, mode: 0o700 })
  const lock = `${path}.lock`
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

const STALE_LOCK_MS = 5_000
