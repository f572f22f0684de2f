import { rm } from 'node:fs/promises'
import type { FileInfo } from '../protocol/replies.js'
import type { CommitHooks, CommitInfo, Committed } from './file-record.js'
import { FileSink } from './file-sink.js'

/**
 * Where an upload's temp file goes once its bytes are verified: the store, seen only through the two moves an
 * upload can end in (so the store owns uploads and an upload knows nothing else of the store).
 */
export interface UploadCommitter {
  commitUpload(temp: string, owner: string, name: string, info: CommitInfo, hooks?: CommitHooks): Promise<Committed>
  commitRepair(temp: string, owner: string, name: string, sha256: string): Promise<FileInfo | undefined>
}

/** One deposit's (or repair fetch's) temp file. commit or commitRepair installs it; discard removes whatever is left. */
export class Upload {
  readonly stream: FileSink

  constructor(
    readonly store: UploadCommitter,
    readonly path: string,
  ) {
    // The sink fsyncs before close, and pipeline waits for close, so a finished pipeline means durable bytes.
    this.stream = new FileSink(path)
    // An upload abandoned before anything was piped into it (a repair whose mirror did not answer) must not take
    // the node down if its temp file cannot even be created; a pipeline sees errors through its own listener.
    this.stream.on('error', () => {})
  }

  async commit(owner: string, name: string, info: CommitInfo, hooks?: CommitHooks): Promise<Committed> {
    if (!this.stream.closed) throw new Error('commit before the upload stream closed')
    return this.store.commitUpload(this.path, owner, name, info, hooks)
  }

  /** Ends a repair fetch: see BlobStore.commitRepair (undefined: the name changed meanwhile, bytes discarded). */
  async commitRepair(owner: string, name: string, sha256: string): Promise<FileInfo | undefined> {
    if (!this.stream.closed) throw new Error('commit before the upload stream closed')
    return this.store.commitRepair(this.path, owner, name, sha256)
  }

  async discard(): Promise<void> {
    // Unlinking before the stream has closed could race its lazy open and leave a file behind.
    if (!this.stream.closed) {
      // Not events.once: it would reject on the 'error' a failed pipeline still has in flight, skipping the rm.
      const closed = new Promise<void>((resolve) => this.stream.once('close', () => resolve()))
      this.stream.destroy()
      await closed
    }
    await rm(this.path, { force: true })
  }
}
