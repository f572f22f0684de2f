import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, rmdir, statfs, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { promisify } from 'node:util'
import type { Test } from 'tap'
import { randomBytesSeeded } from '../test/helpers/bins.js'

/**
 * Fault injection by real file systems: each chaos test gets its own small tmpfs, so "the disk is full" is the
 * kernel's ENOSPC, not a mock. Mounting needs root (or CAP_SYS_ADMIN), which is why these files live outside
 * test/ and run only with `npm run chaos`.
 */
const run = promisify(execFile)

export const KiB = 1024
export const MiB = 1024 * KiB

/** Why tmpfs mounts are impossible here (not Linux, not root, no mount binary...), or undefined if they work. */
export async function tmpfsUnavailable(): Promise<string | undefined> {
  if (process.platform !== 'linux') return `tmpfs mounts need Linux (this is ${process.platform})`
  const probe = await mkdtemp(join(tmpdir(), 'deposito-chaos-probe-'))
  try {
    await run('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', probe])
  } catch (err) {
    await rmdir(probe).catch(() => {})
    const uid = process.getuid?.()
    const said = ((err as { stderr?: string }).stderr || (err as Error).message).trim().split('\n')[0]
    return `cannot mount a tmpfs (uid ${uid}${uid === 0 ? '' : ', not root'}): ${said}`
  }
  await run('umount', [probe])
  await rmdir(probe)
  return undefined
}

export interface Mounted {
  /** The test's own directory (not on the tmpfs): homes, inputs and outputs go here. */
  root: string
  /** The tmpfs mount point. */
  mnt: string
  /** A data dir on the tmpfs, not yet created (the server creates it). */
  dataDir: string
}

/**
 * Mounts a tmpfs of `size` on a subdirectory of the test's testdir and unmounts it when the test ends. Call it
 * first in a test, before anything else registers a teardown or creates the testdir:
 * - the unmount teardown is registered before t.testdir() is called, because tap removes the testdir after the
 *   teardowns only in that order (whichever of the two wraps the test's end first runs first), and a testdir
 *   holding a mount point cannot be removed;
 * - teardowns run last-registered first, so servers started afterwards are stopped before the unmount.
 */
export async function mountTmpfs(t: Test, size = '8m'): Promise<Mounted> {
  let mounted: string | undefined
  t.teardown(async () => {
    if (!mounted) return
    try {
      await run('umount', [mounted])
    } catch (err) {
      // Something still holds a file on it: detach it anyway so no mount outlives the run, and say so.
      await run('umount', ['-l', mounted]).catch(() => {})
      throw new Error(`umount ${mounted} failed (busy?); detached lazily: ${(err as Error).message}`)
    }
  })
  // A run killed mid-test can leave its mount behind, and testdir() cannot empty a directory holding a mount point.
  await run('umount', [join(t.testdirName, 'mnt')]).catch(() => {})
  const root = t.testdir()
  const mnt = join(root, 'mnt')
  await mkdir(mnt)
  await run('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', mnt])
  mounted = mnt
  return { root, mnt, dataDir: join(mnt, 'data') }
}

/** Free bytes on `dir`'s file system, as the server computes them (blocks available to unprivileged users). */
export async function freeBytes(dir: string): Promise<number> {
  const fs = await statfs(dir)
  return fs.bavail * fs.bsize
}

/** Block size of `dir`'s file system (tmpfs: the page size). */
export async function blockSize(dir: string): Promise<number> {
  return (await statfs(dir)).bsize
}

/**
 * Fills `dir`'s file system with a file at `path` until exactly `leave` bytes are free, and checks that it
 * worked: on tmpfs a file of whole pages takes exactly those pages, so this is exact, not a guess.
 */
export async function fillUntil(path: string, dir: string, leave: number): Promise<void> {
  const free = await freeBytes(dir)
  if (free < leave) throw new Error(`only ${free} bytes free on ${dir}, cannot leave ${leave}`)
  await writeFile(path, Buffer.alloc(free - leave, 0x5a))
  const after = await freeBytes(dir)
  if (after !== leave) throw new Error(`filled ${dir} to leave ${leave} bytes free, but ${after} are`)
}

/**
 * `total` pseudo-random bytes as a stream with no known size (like a pipe), generated lazily in 256 KiB chunks.
 * `produced()` says how many bytes the consumer has pulled so far.
 */
export function lazySource(total: number, seed: string): { stream: Readable; produced: () => number } {
  let produced = 0
  const CHUNK = 256 * KiB
  const block = randomBytesSeeded(CHUNK, seed)
  async function* bytes() {
    for (let left = total; left > 0; left -= CHUNK) {
      const chunk = left >= CHUNK ? block : block.subarray(0, left)
      produced += chunk.length
      yield chunk
    }
  }
  return { stream: Readable.from(bytes(), { objectMode: false }), produced: () => produced }
}
