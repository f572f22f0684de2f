import { createHash, type Hash } from 'node:crypto'
import type { Readable } from 'node:stream'
import type { Transform } from 'node:stream'
import { transform } from 'through2'
import { DepositoError } from '../protocol/errors.js'

/**
 * A pass-through that hashes (sha256) and counts what flows through it. With `expected`, it fails the stream with
 * HASH_MISMATCH at the end instead of finishing, so the sink after it never sees a clean end for bad bytes and the
 * pipeline's failure path throws the temp file away. `expected` is a function because the hash may arrive after
 * the bytes (in a trailer decoded upstream, which is complete by the time this stream flushes).
 */
export interface HashingStream extends Transform {
  /** Bytes seen so far; cheap to poll for a progress display. */
  readonly bytes: number
  /** Hex digest, set once the stream has flushed. */
  readonly digest: string | undefined
}

export interface HashVerifierOptions {
  /** The digest the bytes must have; read at the end. */
  expected?: () => string | null | undefined
  /** Called with the running byte count after each chunk (progress displays). */
  onBytes?: (bytes: number) => void
  /**
   * A sha256 already fed with the bytes that precede these (a resumed deposit's prefix, see hashPrefix; a resumed
   * retrieval's partial): the digest covers the whole file. `start` is how many bytes it has seen, so `bytes`
   * counts from there.
   */
  hash?: Hash
  start?: number
}

export function hashVerifier({ expected, onBytes, hash = createHash('sha256'), start = 0 }: HashVerifierOptions = {}): HashingStream {
  const state = { bytes: start, digest: undefined as string | undefined }
  const stream = transform(
    function hashChunk(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null, data?: Buffer) => void) {
      hash.update(chunk)
      state.bytes += chunk.length
      onBytes?.(state.bytes)
      cb(null, chunk)
    },
    function checkDigest(cb: (err?: Error | null) => void) {
      state.digest = hash.digest('hex')
      const want = expected?.()
      if (want && want !== state.digest) {
        return cb(new DepositoError('HASH_MISMATCH', `bytes hash to ${state.digest}, expected ${want}`))
      }
      cb()
    },
  )
  return Object.defineProperties(stream, {
    bytes: { get: () => state.bytes },
    digest: { get: () => state.digest },
  }) as HashingStream
}

/**
 * A sha256 fed with every byte of `prefix`, to seed a verifier with: Node cannot save a hash state, so a resumed
 * transfer rebuilds it from the bytes already on disk (as rsync --append-verify does), never trusting them.
 */
export async function hashPrefix(prefix: Readable | Iterable<Buffer>): Promise<Hash> {
  const hash = createHash('sha256')
  for await (const chunk of prefix) hash.update(chunk as Buffer)
  return hash
}
