import { pipeline } from 'node:stream/promises'
import type { Logger } from 'pino'
import { parseAddress } from '../client/address.js'
import { exchange } from '../client/connection.js'
import { decodeFileInfo, type FileInfo } from '../protocol/messages.js'
import type { BlobStore } from '../store/blob-store.js'
import { BodyDecoder } from '../streams/body-decoder.js'
import { hashVerifier } from '../streams/hash-verifier.js'

/**
 * Repairs the primary's own copy of a file from a mirror that holds it: retrieves it on the owner's behalf (a
 * mirror serves its files to their owner's id), checks it against the recorded hash, and commits it as the
 * same version. Tries each live holder in turn; resolves with whether a good copy is back.
 */
export async function fetchFromMirrors(store: BlobStore, live: string[], owner: string, info: FileInfo, log: Logger): Promise<boolean> {
  for (const mirror of (info.mirrors ?? []).filter((m) => live.includes(m))) {
    const upload = store.beginUpload()
    try {
      const { fields, body, socket } = await exchange(parseAddress(mirror), { op: 'retrieve', clientId: owner, name: info.name }, { idleTimeoutMs: 30_000 })
      try {
        if (decodeFileInfo(fields).sha256 !== info.sha256) throw new Error('the mirror holds another version')
        const verifier = hashVerifier({ expected: () => info.sha256 })
        await pipeline(body, new BodyDecoder({ size: info.size, trailer: false }), verifier, upload.stream)
      } finally {
        socket.destroy()
      }
      await upload.commit(owner, info.name, info)
      log.info({ owner, name: info.name, mirror }, 'local copy repaired from a mirror')
      return true
    } catch (err) {
      log.warn({ owner, name: info.name, mirror, err: (err as Error).message }, 'could not repair the local copy from this mirror')
    } finally {
      await upload.discard()
    }
  }
  return false
}
