import { open, rm } from 'node:fs/promises'
import { DepositoError } from '../protocol/errors.js'
import type { CommitHooks, CommitInfo, Committed } from './file-record.js'
import { FileSink } from './file-sink.js'
import type { UploadCommitter } from './upload.js'

/**
 * A resumable deposit's body going into its partial upload: the same two ends as an Upload's temp file, but what
 * a failure leaves differs. Committed: the data file became the blob and the record goes. Hash mismatch: the
 * whole partial goes (its prefix, or what followed, is wrong; the client starts over). Anything else (a cut, a
 * timeout, a refusal): the bytes are kept and fsynced, for the client to resume from.
 */
export class PartialSink {
  readonly stream: FileSink
  #committed = false

  constructor(
    readonly store: UploadCommitter,
    readonly path: string,
    readonly metaPath: string,
  ) {
    this.stream = new FileSink(path, { append: true })
    this.stream.on('error', () => {})
  }

  async commit(owner: string, name: string, info: CommitInfo, hooks?: CommitHooks): Promise<Committed> {
    if (!this.stream.closed) throw new Error('commit before the upload stream closed')
    const committed = await this.store.commitUpload(this.path, owner, name, info, hooks)
    this.#committed = true
    // A record left by a crash here names data that is gone: get() ignores it and the sweep removes it.
    await rm(this.metaPath, { force: true })
    return committed
  }

  async discard(failure?: unknown): Promise<void> {
    if (!this.stream.closed) {
      const closed = new Promise<void>((resolve) => this.stream.once('close', () => resolve()))
      this.stream.destroy()
      await closed
    }
    if (this.#committed) return
    if (failure instanceof DepositoError && failure.code === 'HASH_MISMATCH') {
      await rm(this.path, { force: true })
      await rm(this.metaPath, { force: true })
      return
    }
    await syncIfExists(this.path)
  }
}

/** A cut the server noticed: what arrived is made durable, so the offset it reports survives a crash. */
async function syncIfExists(path: string): Promise<void> {
  let handle
  try {
    handle = await open(path, 'r+')
  } catch (err) {
    // Gone already: a commit that moved it and then failed to write its record.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
    throw err
  }
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}
