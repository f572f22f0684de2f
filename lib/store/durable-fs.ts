import { open, readFile, rename, rm } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { randomBytes } from 'node:crypto'

/**
 * The few file-system moves that make a write survive a crash. A rename is only durable once the directory that
 * holds the new name has been fsynced; a file's bytes only once the file itself has. Everything the store commits
 * goes through here, so the order (write, fsync file, rename, fsync directory) lives in one place.
 */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

export function tempName(tmpDir: string, hint: string): string {
  return join(tmpDir, `${randomBytes(8).toString('hex')}.${basename(hint)}.part`)
}

/** Replaces `path` with `data` atomically: readers see the old content or the new, never a mix or nothing. */
export async function writeFileDurable(path: string, data: string, tmpDir: string, mode = 0o644): Promise<void> {
  const temp = tempName(tmpDir, path)
  try {
    const handle = await open(temp, 'wx', mode)
    try {
      await handle.writeFile(data)
      await handle.sync()
    } finally {
      await handle.close()
    }
    await rename(temp, path)
  } catch (err) {
    await rm(temp, { force: true })
    throw err
  }
  await fsyncDir(dirname(path))
}

/** A JSON file written by writeFileDurable, or undefined if there is none yet (any other failure is thrown). */
export async function readJsonIfExists<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}

/** Moves a fully written and fsynced file into place and makes the move durable. */
export async function renameDurable(from: string, to: string): Promise<void> {
  await rename(from, to)
  await fsyncDir(dirname(to))
}
