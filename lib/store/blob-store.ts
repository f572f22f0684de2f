import type { ReadStream } from 'node:fs'
import { mkdir, open, readdir, readFile, rm, statfs } from 'node:fs/promises'
import { join } from 'node:path'
import { v4 as uuidv4 } from 'uuid'
import { DepositoError } from '../protocol/errors.js'
import type { FileInfo } from '../protocol/replies.js'
import { fsyncDir, renameDurable, tempName, writeFileDurable } from './durable-fs.js'
import { KeyedMutex } from './keyed-mutex.js'
import { Layout } from './layout.js'
import { lockDataDir } from './dir-lock.js'
import { parseRecord, type CommitHooks, type CommitInfo, type Committed } from './file-record.js'
import { Upload } from './upload.js'
import { clientTag } from '../protocol/client-tag.js'

/**
 * The atomic, crash-safe file store of one node.
 *
 * A deposit streams into a temp file (`beginUpload`), which is fsynced on close; `commit` renames it to its blob
 * name, fsyncs the directory, then durably replaces the name's metadata file: that last rename is the commit
 * point. A crash before it leaves the old version untouched plus garbage that `open` sweeps; a crash after it
 * leaves the new version. Old blobs are removed only after the commit, and only when no other name uses them.
 * The in-memory index mirrors the metadata files and is rebuilt from them at every start.
 */
export interface StoreLog {
  warn(obj: object, msg: string): void
}

export class BlobStore {
  readonly layout: Layout
  readonly #index = new Map<string, Map<string, FileInfo>>()
  readonly #mutex = new KeyedMutex()

  private constructor(root: string) {
    this.layout = new Layout(root)
  }

  #unlock: () => Promise<void> = async () => {}

  static async open(root: string, log?: StoreLog): Promise<BlobStore> {
    const store = new BlobStore(root)
    await mkdir(root, { recursive: true })
    store.#unlock = await lockDataDir(root)
    await store.#recover(log)
    return store
  }

  /** Releases the data directory for another process. */
  async close(): Promise<void> {
    await this.#unlock()
  }

  async #recover(log?: StoreLog): Promise<void> {
    const { layout } = this
    await rm(layout.tmp, { recursive: true, force: true })
    await mkdir(layout.tmp, { recursive: true })
    await mkdir(layout.clients, { recursive: true })
    for (const id of await readdir(layout.clients)) {
      let files: string[]
      try {
        files = await readdir(layout.files(id))
      } catch (err) {
        log?.warn({ entry: id, err }, 'ignoring a foreign entry in the clients directory')
        continue
      }
      const entries = new Map<string, FileInfo>()
      let unreadable = 0
      for (const file of files) {
        try {
          const info = parseRecord(await readFile(join(layout.files(id), file), 'utf8'))
          entries.set(info.name, info)
        } catch (err) {
          unreadable++
          log?.warn({ client: clientTag(id), file, err }, 'skipping unreadable metadata file')
        }
      }
      this.#index.set(id, entries)
      // A crash inside issueClientId can leave files/ without blobs/.
      await mkdir(layout.blobs(id), { recursive: true })
      // An unreadable record may still point at its bytes: collecting now could destroy the only copy.
      if (unreadable === 0) await this.#collectGarbage(id)
    }
  }

  async #collectGarbage(id: string): Promise<void> {
    const used = new Set([...this.#entries(id).values()].map((info) => info.sha256))
    for (const blob of await readdir(this.layout.blobs(id))) {
      if (!used.has(blob)) await rm(join(this.layout.blobs(id), blob), { force: true })
    }
  }

  #entries(id: string): Map<string, FileInfo> {
    const entries = this.#index.get(id)
    if (!entries) throw new DepositoError('UNKNOWN_CLIENT', `id_cliente ${id} was not issued by this server`)
    return entries
  }

  async issueClientId(): Promise<string> {
    const id = uuidv4()
    await this.adoptClient(id)
    return id
  }

  /** A mirror learns of a client id when the first replica for it arrives; the id is the primary's to issue. */
  async adoptClient(id: string): Promise<void> {
    if (this.#index.has(id)) return
    await mkdir(this.layout.files(id), { recursive: true })
    await mkdir(this.layout.blobs(id), { recursive: true })
    await fsyncDir(this.layout.client(id))
    await fsyncDir(this.layout.clients)
    this.#index.set(id, new Map())
  }

  /** Every file of every client (the repair pass and `status` walk them all). */
  *allFiles(): Iterable<{ owner: string; info: FileInfo }> {
    for (const [owner, entries] of this.#index) for (const info of entries.values()) yield { owner, info }
  }

  /** Files and bytes this node holds, for heartbeats and `status`. */
  usage(): { files: number; bytes: number } {
    let files = 0
    let bytes = 0
    for (const { info } of this.allFiles()) {
      files++
      bytes += info.size
    }
    return { files, bytes }
  }

  hasClient(id: string): boolean {
    return this.#index.has(id)
  }

  /** Client ids issued (or, on a mirror, adopted) here: a primary with any cannot become a mirror. */
  clientCount(): number {
    return this.#index.size
  }

  list(owner: string): FileInfo[] {
    return [...this.#entries(owner).values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  }

  stat(owner: string, name: string): FileInfo | undefined {
    return this.#entries(owner).get(name)
  }

  /** Free bytes on the data directory's file system, for refusing a deposit that cannot fit before reading it. */
  async freeBytes(): Promise<number> {
    const fs = await statfs(this.layout.root)
    return fs.bavail * fs.bsize
  }

  beginUpload(): Upload {
    return new Upload(this, tempName(this.layout.tmp, 'upload'))
  }

  /**
   * Called by Upload.commit; see the class comment for the order of moves. Resolves with the new record and the
   * one it superseded, if any, as read under the owner's lock: a deposit that raced this one may have replaced
   * the record its caller saw before the body. `beforeReplace` runs under that lock with the record about to be
   * superseded, before anything changes: what the caller must remember of it (its mirrors' copies) is durable
   * before the record forgets it; if it throws, nothing is committed.
   */
  async commitUpload(temp: string, owner: string, name: string, commit: CommitInfo, hooks: CommitHooks = {}): Promise<Committed> {
    return this.#mutex.run(owner, async () => {
      const entries = this.#entries(owner)
      const old = entries.get(name)
      if (old && hooks.beforeReplace) await hooks.beforeReplace(old)
      await renameDurable(temp, this.layout.blob(owner, commit.sha256))
      const info: FileInfo = { name, ...commit, storedAt: new Date().toISOString() }
      try {
        await writeFileDurable(this.layout.meta(owner, name), JSON.stringify(info) + '\n', this.layout.tmp)
      } catch (err) {
        // Not committed: give the bytes back now (a full disk is the usual cause) unless another name uses them.
        await this.#dropBlobIfUnused(owner, commit.sha256)
        throw err
      }
      entries.set(name, info)
      if (old && old.sha256 !== info.sha256) await this.#dropBlobIfUnused(owner, old.sha256)
      return { info, replaced: old }
    })
  }

  /**
   * Puts back the bytes of a version whose local copy was lost or rotted, fetched from a mirror and already
   * verified. Only the blob is restored; the record (count, mirrors) stays as it stands. If the name no longer
   * holds `sha256` (replaced or deleted while the copy was being fetched), the bytes are stale: committing them
   * would bring an old version back over a newer, acknowledged one, so they are thrown away and nothing is
   * returned.
   */
  async commitRepair(temp: string, owner: string, name: string, sha256: string): Promise<FileInfo | undefined> {
    return this.#mutex.run(owner, async () => {
      const current = this.#entries(owner).get(name)
      if (!current || current.sha256 !== sha256) {
        await rm(temp, { force: true })
        return undefined
      }
      await renameDurable(temp, this.layout.blob(owner, sha256))
      return current
    })
  }

  /**
   * Rewrites a record's replica bookkeeping (asked count, mirrors holding copies), durably, if the name still
   * holds the version `sha256`; a deposit that replaced it meanwhile wins. Returns the record as it now stands.
   */
  async updateRecord(owner: string, name: string, sha256: string, patch: Pick<FileInfo, 'replicas' | 'mirrors'>): Promise<FileInfo | undefined> {
    return this.#mutex.run(owner, async () => {
      const current = this.#entries(owner).get(name)
      if (!current || current.sha256 !== sha256) return current
      return this.#writeRecord(owner, current, patch)
    })
  }

  /**
   * Like updateRecord, but only while the name's record is still `expected`, the very object the caller read
   * (every write installs a new one). For patches computed over a long operation: a change made meanwhile, by
   * the user or a deposit, must not be reverted by a stale view. Resolves with the new record, or undefined if
   * the record changed (or went) and nothing was written.
   */
  async updateRecordIf(owner: string, expected: FileInfo, patch: Pick<FileInfo, 'replicas' | 'mirrors'>): Promise<FileInfo | undefined> {
    return this.#mutex.run(owner, async () => {
      if (this.#entries(owner).get(expected.name) !== expected) return undefined
      return this.#writeRecord(owner, expected, patch)
    })
  }

  async #writeRecord(owner: string, current: FileInfo, patch: Pick<FileInfo, 'replicas' | 'mirrors'>): Promise<FileInfo> {
    const info: FileInfo = { ...current, ...patch }
    await writeFileDurable(this.layout.meta(owner, info.name), JSON.stringify(info) + '\n', this.layout.tmp)
    this.#entries(owner).set(info.name, info)
    return info
  }

  /**
   * Opens the bytes before anything is said to the client, so a missing file is an error reply, not a cut stream.
   * With `start`, the stream begins at that byte (a retrieval resuming); past the end it is BAD_HEADER.
   */
  async openBlob(owner: string, name: string, start = 0): Promise<{ info: FileInfo; stream: ReadStream }> {
    // Twice at most: a replace that commits between our stat and our open removes the old blob; the second stat
    // sees the new version.
    for (let attempt = 0; ; attempt++) {
      const info = this.stat(owner, name)
      if (!info) throw new DepositoError('NOT_FOUND', `no file named ${JSON.stringify(name)}`)
      try {
        if (start > info.size) throw new DepositoError('BAD_HEADER', `offset ${start} is past the end of ${JSON.stringify(name)} (${info.size} bytes)`)
        const handle = await open(this.layout.blob(owner, info.sha256), 'r')
        // No position from 0: positioned reads fail on what is not a regular file (a FIFO in the scrub tests).
        return { info, stream: handle.createReadStream(start > 0 ? { start } : {}) }
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
        if (attempt > 0 || this.stat(owner, name) === info) {
          throw new DepositoError('NOT_FOUND', `the bytes of ${JSON.stringify(name)} are missing from this node`)
        }
      }
    }
  }

  async delete(owner: string, name: string): Promise<FileInfo> {
    const info = await this.#remove(owner, name)
    if (!info) throw new DepositoError('NOT_FOUND', `no file named ${JSON.stringify(name)}`)
    return info
  }

  /**
   * Removes `name` only while it holds version `sha256`: a drop meant for an old or corrupt copy must spare a
   * newer version deposited since. Resolves with what was removed, if anything.
   */
  async deleteVersion(owner: string, name: string, sha256: string): Promise<FileInfo | undefined> {
    if (!this.hasClient(owner)) return undefined
    return this.#remove(owner, name, (info) => info.sha256 === sha256)
  }

  /**
   * Removes the name only while its record is still `expected`, the very object the caller read (as
   * updateRecordIf): a delete that has retired the copies `expected` names must not remove a record that has
   * gained a copy since (a repair push), or that copy would outlive every record of it. Resolves with whether
   * it was removed.
   */
  async deleteRecordIf(owner: string, expected: FileInfo): Promise<boolean> {
    return (await this.#remove(owner, expected.name, (info) => info === expected)) !== undefined
  }

  async #remove(owner: string, name: string, matches: (info: FileInfo) => boolean = () => true): Promise<FileInfo | undefined> {
    return this.#mutex.run(owner, async () => {
      const entries = this.#entries(owner)
      const info = entries.get(name)
      if (!info || !matches(info)) return undefined
      await rm(this.layout.meta(owner, name), { force: true })
      await fsyncDir(this.layout.files(owner))
      entries.delete(name)
      await this.#dropBlobIfUnused(owner, info.sha256)
      return info
    })
  }

  async #dropBlobIfUnused(owner: string, sha256: string): Promise<void> {
    for (const info of this.#entries(owner).values()) if (info.sha256 === sha256) return
    await rm(this.layout.blob(owner, sha256), { force: true })
  }
}
