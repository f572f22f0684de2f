import type { FileInfo } from '../protocol/replies.js'

/** What a commit records about a new version, beyond its name and date. */
export interface CommitInfo {
  size: number
  sha256: string
  replicas: number
  mirrors?: string[]
}

/** What a commit installed, and the record it superseded (read under the store's lock). */
export interface Committed {
  info: FileInfo
  replaced?: FileInfo
}

export interface CommitHooks {
  /** Runs before a record is superseded, with that record (see BlobStore.commitUpload). */
  beforeReplace?: (old: FileInfo) => Promise<void>
}

/**
 * A metadata file's content, checked: only well-formed records of our own may enter the index. A record that
 * fails here is skipped (and blocks garbage collection for its client), never guessed at.
 */
export function parseRecord(text: string): FileInfo {
  const r = JSON.parse(text) as Partial<FileInfo>
  const ok =
    typeof r.name === 'string' &&
    r.name.length > 0 &&
    Number.isSafeInteger(r.size) &&
    r.size! >= 0 &&
    typeof r.sha256 === 'string' &&
    /^[0-9a-f]{64}$/.test(r.sha256) &&
    Number.isSafeInteger(r.replicas) &&
    r.replicas! >= 0 &&
    typeof r.storedAt === 'string' &&
    (r.mirrors === undefined || (Array.isArray(r.mirrors) && r.mirrors.every((m) => typeof m === 'string')))
  if (!ok) throw new Error('not a file record')
  const info: FileInfo = { name: r.name!, size: r.size!, sha256: r.sha256!, replicas: r.replicas!, storedAt: r.storedAt! }
  if (r.mirrors) info.mirrors = r.mirrors
  return info
}
