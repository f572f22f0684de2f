import type { BlobStore } from '../store/blob-store.js'

/** What request handlers need from the node that runs them. */
export interface ServerContext {
  store: BlobStore
  /** qtd_replicas for a deposit that does not say. */
  defaultReplicas: number
  /** How many mirrors could take a replica right now (none on a lone node). */
  liveMirrors(): number
}
