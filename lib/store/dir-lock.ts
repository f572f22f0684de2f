import { constants } from 'node:fs'
import { open, readFile, realpath, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import fsExt from 'fs-ext'
import { DepositoError } from '../protocol/errors.js'

/**
 * One node per data directory. A second server on the same `--data` would sweep the first one's temp files and
 * collect blobs it is about to commit, so the store holds an exclusive flock(2) on `DATA/lock` for as long as it
 * runs. The kernel grants it to one open file description at a time, atomically, and drops it when the holder's
 * descriptor closes, which every death does (SIGKILL, the OOM killer, a crash), so no stale lock can exist and
 * nothing ever has to read a pid and decide to delete a file: the old pid-file scheme did exactly that, and two
 * servers that both found the same stale pid could both delete it and both start.
 *
 * The pid written into the file is for people and error messages only; the lock is the flock, not the content.
 * The file is never deleted: a process that had already opened the old inode and one that creates a new file
 * would each get "their" lock, and both run.
 *
 * The descriptor is not inherited by child processes (libuv opens every file with O_CLOEXEC), so a server that
 * spawns something cannot leave the lock held behind it.
 */

/**
 * Directories this process holds, by real path, with the pending acquisition so that two concurrent opens in one
 * process never race each other into two flocks (the second would conflict with the first: flock locks belong to
 * open file descriptions, not to processes). It also keeps each handle reachable: Node closes a FileHandle that is
 * garbage collected, and a lock must last until its release or the process's end, not until the next collection.
 */
const held = new Map<string, Promise<FileHandle>>()

/**
 * Takes `DIR/lock` for this process; the returned function releases it.
 *
 * The same process may reopen a directory it already holds, and the reopen's release is a no-op, exactly as with
 * the pid file (whose check was "the pid in the file is mine"). Tests model a restart by opening a second store or
 * server on the same directory in-process, often without closing the first; the lock exists to keep other
 * processes out, and within one process the first opener owns the flock until it closes.
 */
export async function lockDataDir(dir: string): Promise<() => Promise<void>> {
  const key = await realpath(dir)
  const pending = held.get(key)
  if (pending) {
    await pending
    return async () => {}
  }
  const acquiring = acquire(dir)
  held.set(key, acquiring)
  let handle: FileHandle
  try {
    handle = await acquiring
  } catch (err) {
    held.delete(key)
    throw err
  }
  let released = false
  return async () => {
    if (released) return
    released = true
    held.delete(key)
    await handle.close()
  }
}

/** What flock(LOCK_NB) says when another description holds the lock (one errno on Linux, two names in POSIX). */
const BUSY = new Set(['EAGAIN', 'EWOULDBLOCK'])

async function acquire(dir: string): Promise<FileHandle> {
  const path = join(dir, 'lock')
  // No O_TRUNC: the file still names the current holder until we hold the lock ourselves.
  const handle = await open(path, constants.O_RDWR | constants.O_CREAT, 0o644)
  try {
    await flockExclusive(handle.fd)
    await handle.truncate(0)
    await handle.write(`${process.pid}\n`, 0)
    return handle
  } catch (err) {
    // Closing drops the flock too, should it be the pid write that failed: nothing is left held on any error.
    await handle.close()
    if (!BUSY.has((err as NodeJS.ErrnoException).code!)) throw err
    const pid = await holderPid(path)
    const who = pid ? `process ${pid}` : 'another process'
    throw new DepositoError('USAGE', `data directory ${dir} is in use by ${who}; give each node its own --data`)
  }
}

/** Non-blocking: a server that finds its directory taken should say so, not hang until the other one stops. */
function flockExclusive(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fsExt.flock(fd, 'exnb', (err) => (err ? reject(err) : resolve())))
}

/** Best effort: the holder may not have written its pid yet, or the file may hold anything a person put there. */
async function holderPid(path: string): Promise<number | undefined> {
  const text = await readFile(path, 'utf8').catch(() => '')
  const pid = Number(text.trim())
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined
}
