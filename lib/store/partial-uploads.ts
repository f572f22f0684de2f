import { createReadStream } from 'node:fs'
import { mkdir, open, readdir, readFile, rm, stat, truncate } from 'node:fs/promises'
import { join } from 'node:path'
import type { Hash } from 'node:crypto'
import { clientTag } from '../protocol/client-tag.js'
import { DepositoError } from '../protocol/errors.js'
import { parseClientId, parseUploadToken } from '../protocol/values.js'
import { hashPrefix } from '../streams/hash-verifier.js'
import { fsyncDir, writeFileDurable } from './durable-fs.js'
import type { Layout } from './layout.js'
import { PartialSink } from './partial-sink.js'
import type { UploadCommitter } from './upload.js'

/**
 * Resumable deposits kept between connections, `DATA/partials/<owner>/<token>` (the bytes so far) beside
 * `<token>.json` (what they are meant to become). Outside `clients/` and `tmp/`, so the store's start-up sweep and
 * garbage collection never see them and `list`, `status` and `holdings`, which read the store, never show them.
 *
 * Invariants: a partial is only ever reached through its owner's directory, so another client id naming the token
 * finds nothing; at most one connection holds a token's claim, and only its holder truncates or appends; the data
 * file's mtime is the time of its last byte, from which the TTL counts. The prefix on disk is never trusted: a
 * resume re-hashes it and the whole file's sha256 decides.
 */
export interface PartialRecord {
  name: string
  size: number
  owner: string
  createdAt: string
}

export interface PartialState {
  record: PartialRecord
  /** Bytes the partial holds now. */
  length: number
}

export interface PartialLog {
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
}

export interface PartialOptions {
  /** A partial whose last byte is older than this is removed. */
  ttlMs: number
  log: PartialLog
}

/** The longest wait between sweeps, whatever the TTL. */
const MAX_SWEEP_INTERVAL_MS = 10 * 60_000

export class PartialUploads {
  readonly #root: string
  readonly #layout: Layout
  readonly #ttlMs: number
  readonly #log: PartialLog
  readonly #claimed = new Set<string>()
  #timer: NodeJS.Timeout | undefined
  #sweeping: Promise<number> | undefined

  private constructor(layout: Layout, { ttlMs, log }: PartialOptions) {
    this.#layout = layout
    this.#root = join(layout.root, 'partials')
    this.#ttlMs = ttlMs
    this.#log = log
  }

  /** Opens the partials of a data dir, sweeps the expired ones, and sweeps again on a timer until close. */
  static async open(layout: Layout, options: PartialOptions): Promise<PartialUploads> {
    const partials = new PartialUploads(layout, options)
    await mkdir(partials.#root, { recursive: true })
    await partials.sweep()
    partials.#timer = setInterval(() => void partials.sweep().catch(() => {}), Math.max(1, Math.min(options.ttlMs / 4, MAX_SWEEP_INTERVAL_MS)))
    partials.#timer.unref()
    return partials
  }

  /** Stops the timer and waits for a sweep under way. */
  async close(): Promise<void> {
    clearInterval(this.#timer)
    this.#timer = undefined
    await this.#sweeping?.catch(() => {})
  }

  #paths(owner: string, token: string): { dir: string; data: string; meta: string } {
    const dir = join(this.#root, parseClientId(owner))
    const data = join(dir, parseUploadToken(token))
    return { dir, data, meta: `${data}.json` }
  }

  /**
   * Takes the token for this connection; the returned function gives it back. A second connection on a token
   * being written would interleave truncates and appends, so it is refused.
   */
  claim(owner: string, token: string): () => void {
    const key = `${owner}/${token}`
    if (this.#claimed.has(key)) throw busy(token)
    this.#claimed.add(key)
    return () => this.#claimed.delete(key)
  }

  /** Throws BUSY while a connection writes the token (an `offset` then would report a length about to change). */
  checkFree(owner: string, token: string): void {
    if (this.#claimed.has(`${owner}/${token}`)) throw busy(token)
  }

  /** The partial `owner` keeps under `token`, or undefined (none, another client's, expired, or committed). */
  async get(owner: string, token: string): Promise<PartialState | undefined> {
    const { data, meta } = this.#paths(owner, token)
    try {
      const record = JSON.parse(await readFile(meta, 'utf8')) as PartialRecord
      // Owner is checked too: the path already implies it, and a record copied in by hand must not be believed.
      if (record.owner !== owner) return undefined
      return { record, length: (await stat(data)).size }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw err
    }
  }

  /** Starts an empty partial; the record is durable before any byte is promised to be kept. */
  async create(owner: string, token: string, name: string, size: number): Promise<void> {
    const { dir, data, meta } = this.#paths(owner, token)
    await mkdir(dir, { recursive: true })
    await (await open(data, 'w')).close()
    const record: PartialRecord = { name, size, owner, createdAt: new Date().toISOString() }
    await writeFileDurable(meta, JSON.stringify(record) + '\n', this.#layout.tmp, 0o600)
    await fsyncDir(this.#root)
  }

  /** Cuts the partial to `offset` bytes (what the client will send from) and hashes those bytes. */
  async resumeAt(owner: string, token: string, offset: number): Promise<Hash> {
    const { data } = this.#paths(owner, token)
    await truncate(data, offset)
    return hashPrefix(offset === 0 ? [] : createReadStream(data, { start: 0, end: offset - 1 }))
  }

  /** Where the body goes: appended to the partial, committed like a temp file (see PartialSink). */
  sink(store: UploadCommitter, owner: string, token: string): PartialSink {
    const { data, meta } = this.#paths(owner, token)
    return new PartialSink(store, data, meta)
  }

  /**
   * Removes every partial whose last byte is older than the TTL, except those a connection holds. Resolves with
   * how many went. One sweep at a time: a timer tick during a slow one joins it.
   */
  sweep(now = Date.now()): Promise<number> {
    this.#sweeping ??= this.#sweep(now).finally(() => (this.#sweeping = undefined))
    return this.#sweeping
  }

  async #sweep(now: number): Promise<number> {
    let removed = 0
    for (const owner of await readdir(this.#root)) {
      let names: string[]
      try {
        names = await readdir(join(this.#root, owner))
      } catch {
        continue
      }
      for (const name of names) {
        // A record without its data (a crash inside create) ages by its own mtime.
        const token = name.endsWith('.json') ? name.slice(0, -5) : name
        if (name.endsWith('.json') && names.includes(token)) continue
        const key = `${owner}/${token}`
        if (this.#claimed.has(key)) continue
        // Held while it is judged and removed: a resume arriving meanwhile gets BUSY, not a file vanishing under it.
        this.#claimed.add(key)
        try {
          const { mtimeMs } = await stat(join(this.#root, owner, name))
          if (now - mtimeMs <= this.#ttlMs) continue
          await rm(join(this.#root, owner, token), { force: true })
          await rm(join(this.#root, owner, `${token}.json`), { force: true })
          removed++
          this.#log.info({ owner: clientTag(owner), upload: token, idleMs: Math.round(now - mtimeMs) }, 'partial upload expired')
        } catch (err) {
          // Logged by code only: a path here names the owner's id.
          this.#log.warn({ owner: clientTag(owner), upload: token, code: (err as NodeJS.ErrnoException).code }, 'could not sweep a partial upload')
        } finally {
          this.#claimed.delete(key)
        }
      }
    }
    return removed
  }
}

function busy(token: string): DepositoError {
  return new DepositoError('BUSY', `upload ${token} is being written by another connection`)
}
