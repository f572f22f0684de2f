import { pipeline } from 'node:stream/promises'
import { DepositoError } from '../protocol/errors.js'
import type { DepositRequest, ReplicateRequest } from '../protocol/messages.js'
import { BodyDecoder } from '../streams/body-decoder.js'
import { FanOut, type FanOutTarget } from '../streams/fan-out.js'
import { hashVerifier } from '../streams/hash-verifier.js'
import type { Upload } from '../store/upload.js'
import type { Exchange } from './connection.js'
import type { ServerContext } from './context.js'

/**
 * The receiving half that a primary's deposit and a mirror's replica share: socket → body decoder → hash verifier →
 * fan-out, which writes the local temp file and any extra targets (the primary's replica streams) at once, the
 * slowest paced by backpressure. `finish` runs once every byte is verified and durable in the temp file, and
 * commits it; whatever happens, the temp file is gone afterwards and the old version of the name stays unless
 * `finish` replaced it.
 */
export interface Received {
  upload: Upload
  size: number
  sha256: string
  fanOut: FanOut
}

/** What the trailer of each extra target will carry, readable once the body has ended. */
export type Trailer = () => { size: number; hash: string }

export async function receiveFile<T>(
  request: DepositRequest | ReplicateRequest,
  exchange: Exchange,
  ctx: ServerContext,
  extraTargets: (trailer: Trailer) => FanOutTarget[],
  finish: (received: Received) => Promise<T>,
): Promise<T> {
  const upload = ctx.store.beginUpload()
  try {
    // A peer's trailer names the hash the bytes must match: unsealed, anyone on the path could rewrite both.
    const seal = exchange.peerSeal
    const checkTrailer = seal && ((line: string) => seal.check(line, 'replicate trailer'))
    const decoder = new BodyDecoder({ size: request.size, trailer: request.hash === null, maxTrailerBytes: exchange.limits.maxHeaderBytes, checkTrailer })
    const verifier = hashVerifier({ expected: () => request.hash ?? decoder.result.hash })
    const trailer: Trailer = () => ({ size: decoder.result.size, hash: verifier.digest! })
    const targets = [{ name: 'local', stream: upload.stream, required: true }, ...extraTargets(trailer)]
    const fanOut = new FanOut(targets, { stallTimeoutMs: ctx.cluster?.replicaStallMs ?? 30_000 })
    await pipeline(exchange.body, decoder, verifier, fanOut)
    return await finish({ upload, size: decoder.result.size, sha256: verifier.digest!, fanOut })
  } finally {
    await upload.discard()
  }
}

/** Refuses a body announced larger than the disk's free space before reading any of it. */
export async function checkSpace(request: { size: number | null }, ctx: ServerContext): Promise<void> {
  if (request.size !== null && request.size > (await ctx.store.freeBytes())) {
    throw new DepositoError('NO_SPACE', `the server has no room for ${request.size} bytes`)
  }
}
