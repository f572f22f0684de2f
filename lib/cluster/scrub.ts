import { Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { DepositoError } from '../protocol/errors.js'
import type { FileInfo } from '../protocol/replies.js'
import type { BlobStore } from '../store/blob-store.js'
import { hashVerifier } from '../streams/hash-verifier.js'

/**
 * Re-hashing against bit rot. Re-reading a whole store every repair pass cannot scale, so each pass checks a
 * slice: files in a fixed order (owner, then name), from where the last slice stopped, one at a time and streamed
 * through the hasher, until `budget` bytes are read; over successive passes every copy is re-verified. A file
 * larger than the budget is still checked whole when its turn comes, or it never would be.
 *
 * A copy that cannot be read at all (EIO, EACCES, a directory where the blob should be) is reported with the bad
 * ones: for repair it is as useless as a rotten one, and the slice must move past it, or every later run would
 * stop at the same file and nothing after it would ever be checked again. One run at a time: a second caller gets
 * BUSY at once instead of re-reading the same slice from the same cursor.
 */
export interface ScrubFinding {
  owner: string
  info: FileInfo
  /** Set when the copy could not be read (its error message), rather than read and found wrong or missing. */
  unreadable?: string
}

export interface ScrubLimits {
  /** Checked between files: a stopping node ends the slice early. */
  stopped?: () => boolean
  /** Ends the slice once this much time has gone (a caller waiting on a timeout needs its answer before that). */
  maxMs?: number
}

export interface ScrubReport {
  checked: number
  bytes: number
  /** Copies whose bytes are missing or no longer hash to their record's sha256. */
  bad: ScrubFinding[]
}

const keyOf = (owner: string, name: string) => `${owner}\0${name}`

export class Scrubber {
  /** The key of the last file checked: the next slice starts after it. */
  #cursor = ''

  constructor(readonly store: BlobStore) {}

  #running = false

  get running(): boolean {
    return this.#running
  }

  async run(budget: number, { stopped = () => false, maxMs = Infinity }: ScrubLimits = {}): Promise<ScrubReport> {
    if (this.#running) throw new DepositoError('BUSY', 'a scrub is already under way on this node')
    this.#running = true
    try {
      return await this.#slice(budget, stopped, Date.now() + maxMs)
    } finally {
      this.#running = false
    }
  }

  async #slice(budget: number, stopped: () => boolean, deadline: number): Promise<ScrubReport> {
    const report: ScrubReport = { checked: 0, bytes: 0, bad: [] }
    if (budget <= 0) return report
    const files = [...this.store.allFiles()].map((f) => ({ ...f, key: keyOf(f.owner, f.info.name) }))
    files.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    const start = files.findIndex((f) => f.key > this.#cursor)
    const order = start <= 0 ? files : [...files.slice(start), ...files.slice(0, start)]
    for (const { owner, info, key } of order) {
      if (report.bytes >= budget || stopped() || Date.now() >= deadline) break
      const verdict = await checkCopy(this.store, owner, info).catch((err: unknown) => err as Error)
      this.#cursor = key
      report.checked++
      report.bytes += info.size
      if (verdict instanceof Error) report.bad.push({ owner, info, unreadable: verdict.message })
      else if (verdict === 'bad') report.bad.push({ owner, info })
    }
    return report
  }
}

/**
 * Hashes one stored copy against its record. 'gone' means the name was deleted or replaced meanwhile: nothing
 * to judge. A read error other than a missing blob (an unreadable disk) is thrown; Scrubber.run reports it.
 */
export async function checkCopy(store: BlobStore, owner: string, info: FileInfo): Promise<'good' | 'bad' | 'gone'> {
  const current = () => store.stat(owner, info.name)
  if (!store.hasClient(owner)) return 'gone'
  let opened
  try {
    opened = await store.openBlob(owner, info.name)
  } catch (err) {
    if (!(err instanceof DepositoError && err.code === 'NOT_FOUND')) throw err
    return current()?.sha256 === info.sha256 ? 'bad' : 'gone'
  }
  const { stream } = opened
  try {
    if (opened.info.sha256 !== info.sha256) return 'gone'
    const sink = new Writable({ write: (_chunk, _enc, cb) => cb() })
    await pipeline(stream, hashVerifier({ expected: () => info.sha256 }), sink)
    return 'good'
  } catch (err) {
    if (err instanceof DepositoError && err.code === 'HASH_MISMATCH') return current()?.sha256 === info.sha256 ? 'bad' : 'gone'
    throw err
  } finally {
    stream.destroy()
  }
}
