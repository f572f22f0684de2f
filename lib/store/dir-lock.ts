import { open, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { DepositoError } from '../protocol/errors.js'

/**
 * One node per data directory. A second server on the same `--data` would sweep the first one's temp files and
 * collect blobs it is about to commit, so the store takes `DATA/lock` (holding the owner's pid) before it touches
 * anything. A lock left by a process that no longer exists is taken over; the same process may reopen its own
 * directory (tests restart a store in-process).
 */
export async function lockDataDir(dir: string): Promise<() => Promise<void>> {
  const path = join(dir, 'lock')
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(path, 'wx', 0o644)
      await handle.writeFile(`${process.pid}\n`)
      await handle.close()
      return () => rm(path, { force: true })
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      const pid = Number((await readFile(path, 'utf8').catch(() => '')).trim())
      if (pid === process.pid) return async () => {}
      if (pid > 0 && isAlive(pid)) {
        throw new DepositoError('USAGE', `data directory ${dir} is in use by process ${pid}; give each node its own --data`)
      }
      await rm(path, { force: true })
    }
  }
  throw new DepositoError('USAGE', `could not lock data directory ${dir}`)
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}
