import type { Hash } from 'node:crypto'
import { pipeline } from 'node:stream/promises'
import { DepositoError } from '../protocol/errors.js'
import type { DepositRequest, ReplicateRequest } from '../protocol/messages.js'
import { BodyDecoder } from '../streams/body-decoder.js'
import { FanOut, type FanOutTarget } from '../streams/fan-out.js'
import { hashVerifier } from '../streams/hash-verifier.js'
import type { CommitHooks, CommitInfo, Committed } from '../store/file-record.js'
import type { FileSink } from '../store/file-sink.js'
import type { Exchange } from './connection.js'
import type { ServerContext } from './context.js'

/**
 * The receiving half that a primary's deposit and a mirror's replica share: socket → body decoder → hash verifier →
 * fan-out, which writes the local temp file and any extra targets (the primary's replica streams) at once, the
 * slowest paced by backpressure. `finish` runs once every byte is verified and durable in the temp file, and
 * commits it; whatever happens, the temp file is gone afterwards and the old version of the name stays unless
 * `finish` replaced it. A resumed deposit (resume-deposit.ts) brings its own sink, the partial upload, which
 * decides what a failure leaves of it.
 */
export interface Received {
  upload: Sink
  size: number
  sha256: string
  fanOut: FanOut
}

/** Where the local copy goes: a store temp file (Upload) or a resumable deposit's partial (PartialSink). */
export interface Sink {
  readonly stream: FileSink
  commit(owner: string, name: string, info: CommitInfo, hooks?: CommitHooks): Promise<Committed>
  /** Called whatever happened, with the failure if there was one. */
  discard(failure?: unknown): Promise<void>
}

/** A body that is not the whole file: a resumed deposit sends bytes `offset`..N-1 after a verified prefix. */
export interface ReceiveFrom {
  sink: () => Sink
  /** Bytes of the file already in the sink, before this body. */
  offset: number
  /** sha256 fed with those bytes. */
  seed?: Hash
}

/** What the trailer of each extra target will carry, readable once the body has ended. */
export type Trailer = () => { size: number; hash: string }

export async function receiveFile<T>(
  request: DepositRequest | ReplicateRequest,
  exchange: Exchange,
  ctx: ServerContext,
  extraTargets: (trailer: Trailer) => FanOutTarget[],
  finish: (received: Received) => Promise<T>,
  from?: ReceiveFrom,
): Promise<T> {
  const upload = from ? from.sink() : ctx.store.beginUpload()
  const offset = from?.offset ?? 0
  let failure: unknown
  try {
    // A peer's trailer names the hash the bytes must match: unsealed, anyone on the path could rewrite both.
    const seal = exchange.peerSeal
    const checkTrailer = seal && ((line: string) => seal.check(line, 'replicate trailer'))
    const size = request.size === null ? null : request.size - offset
    const decoder = new BodyDecoder({ size, offset, trailer: request.hash === null, maxTrailerBytes: exchange.limits.maxHeaderBytes, checkTrailer })
    const verifier = hashVerifier({ expected: () => request.hash ?? decoder.result.hash, hash: from?.seed })
    const trailer: Trailer = () => ({ size: decoder.result.size, hash: verifier.digest! })
    const targets = [{ name: 'local', stream: upload.stream, required: true }, ...extraTargets(trailer)]
    const fanOut = new FanOut(targets, { stallTimeoutMs: ctx.cluster?.replicaStallMs ?? 30_000 })
    await pipeline(exchange.body, decoder, verifier, fanOut)
    return await finish({ upload, size: decoder.result.size, sha256: verifier.digest!, fanOut })
  } catch (err) {
    failure = err
    throw err
  } finally {
    await upload.discard(failure)
  }
}

/** Refuses a body announced larger than the disk's free space before reading any of it. */
export async function checkSpace(request: { size: number | null }, ctx: ServerContext): Promise<void> {
  if (request.size !== null && request.size > (await ctx.store.freeBytes())) {
    throw new DepositoError('NO_SPACE', `the server has no room for ${request.size} bytes`)
  }
}
