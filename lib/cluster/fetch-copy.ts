import { pipeline } from 'node:stream/promises'
import type { Logger } from 'pino'
import { parseAddress } from '../net/address.js'
import { exchange, type ConnectOptions } from '../net/connection.js'
import { decodeFileInfo, type FileInfo } from '../protocol/replies.js'
import type { BlobStore } from '../store/blob-store.js'
import type { Membership } from './membership.js'
import { BodyDecoder } from '../streams/body-decoder.js'
import { hashVerifier } from '../streams/hash-verifier.js'
import { clientTag } from '../protocol/client-tag.js'

/**
 * Repairs the primary's own copy of a file from a mirror that holds it: retrieves it on the owner's behalf (a
 * mirror serves its files to their owner's id), checks it against the recorded hash, and puts the bytes back
 * under the same record. Tries each live holder in turn. Resolves with false only when no good copy could be
 * had; true when the copy is back, or when the name no longer holds that version (replaced or deleted while the
 * copy was in flight), so there is nothing left to repair.
 *
 * A read that finds a bad copy and the repair pass's scrub may both ask for the same version at once: the second
 * joins the first's fetch instead of moving the bytes twice.
 */
/** The live mirrors (node ids) and where each is now. */
export type MirrorDirectory = Pick<Membership, 'live' | 'resolve'>

/**
 * `connect` carries the peers' transport: the fetch crosses the same links as replicas (TLS-PSK off loopback or
 * under --tls), never a plaintext client connection that would show the owner's id and bytes on the wire.
 */
export function fetchFromMirrors(store: BlobStore, mirrors: MirrorDirectory, owner: string, info: FileInfo, log: Logger, connect: ConnectOptions = {}): Promise<boolean> {
  const repairs = repairsOf(store)
  const key = keyOf(owner, info.name, info.sha256)
  let running = repairs.get(key)
  if (!running) {
    running = fetchOnce(store, mirrors, owner, info, log, connect).finally(() => repairs.delete(key))
    repairs.set(key, running)
  }
  return running
}

/** The repair of this version under way, if any, for a reader that should wait for it before opening the blob. */
export function repairUnderWay(store: BlobStore, owner: string, info: FileInfo): Promise<boolean> | undefined {
  return repairsOf(store).get(keyOf(owner, info.name, info.sha256))
}

async function fetchOnce(store: BlobStore, mirrors: MirrorDirectory, owner: string, info: FileInfo, log: Logger, connect: ConnectOptions): Promise<boolean> {
  const live = mirrors.live()
  for (const mirror of (info.mirrors ?? []).filter((m) => live.includes(m))) {
    const upload = store.beginUpload()
    try {
      const { fields, body, socket } = await exchange(parseAddress(mirrors.resolve(mirror)), { op: 'retrieve', clientId: owner, name: info.name }, { connectTimeoutMs: 2_000, ...connect, idleTimeoutMs: 30_000 })
      try {
        if (decodeFileInfo(fields).sha256 !== info.sha256) throw new Error('the mirror holds another version')
        const verifier = hashVerifier({ expected: () => info.sha256 })
        await pipeline(body, new BodyDecoder({ size: info.size, trailer: false }), verifier, upload.stream)
      } finally {
        socket.destroy()
      }
      if (await upload.commitRepair(owner, info.name, info.sha256)) {
        log.info({ owner: clientTag(owner), name: info.name, mirror }, 'local copy repaired from a mirror')
      } else {
        log.info({ owner: clientTag(owner), name: info.name, sha256: info.sha256 }, 'the file changed while its copy was being repaired; the fetched copy is discarded')
      }
      return true
    } catch (err) {
      log.warn({ owner: clientTag(owner), name: info.name, mirror, err: (err as Error).message }, 'could not repair the local copy from this mirror')
    } finally {
      await upload.discard()
    }
  }
  return false
}

const running = new WeakMap<BlobStore, Map<string, Promise<boolean>>>()

function repairsOf(store: BlobStore): Map<string, Promise<boolean>> {
  let map = running.get(store)
  if (!map) running.set(store, (map = new Map()))
  return map
}

const keyOf = (owner: string, name: string, sha256: string) => `${owner}\0${name}\0${sha256}`
