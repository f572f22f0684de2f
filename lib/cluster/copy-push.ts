import { pipeline } from 'node:stream/promises'
import type { Logger } from 'pino'
import type { FileInfo } from '../protocol/replies.js'
import { requestFields } from '../protocol/messages.js'
import type { BlobStore } from '../store/blob-store.js'
import type { PeerClient } from './peer-client.js'

/**
 * Sends the primary's own, committed copy of a file to a mirror: how a copy lost in a deposit is made up
 * (a substitute), how `replicas` grows a count, and how repair restores one. The hash goes in the header, so the
 * mirror checks the bytes against the deposit's original hash, not against anything computed on the way.
 */
export async function pushCopy(store: BlobStore, peers: PeerClient, owner: string, info: FileInfo, mirror: string): Promise<void> {
  const { stream } = await store.openBlob(owner, info.name)
  try {
    const request = { op: 'replicate' as const, clientId: owner, name: info.name, replicas: info.replicas, size: info.size, hash: info.sha256 }
    const { socket, reply } = await peers.open(mirror, requestFields(request))
    await pipeline(stream, socket)
    await reply
  } finally {
    stream.destroy()
  }
}

/**
 * Pushes copies to `candidates`, in order, until `wanted` more mirrors hold one; returns those that do.
 * A candidate that fails is logged and skipped.
 */
export async function pushCopies(
  store: BlobStore,
  peers: PeerClient,
  owner: string,
  info: FileInfo,
  candidates: string[],
  wanted: number,
  log: Logger,
): Promise<string[]> {
  const done: string[] = []
  for (const mirror of candidates) {
    if (done.length >= wanted) break
    try {
      await pushCopy(store, peers, owner, info, mirror)
      done.push(mirror)
    } catch (err) {
      log.warn({ mirror, name: info.name, err: (err as Error).message }, 'could not copy a file to a mirror')
    }
  }
  return done
}
