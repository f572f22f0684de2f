import type { Socket } from 'node:net'
import type { Hash } from 'node:crypto'
import { Transform, Writable, type Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import split2 from 'split2'
import { DepositoError, localIoError, toDepositoError } from '../protocol/errors.js'
import { decodeFields, type Fields } from '../protocol/fields.js'
import { encodeRequest, type DepositRequest } from '../protocol/messages.js'
import { parseCount } from '../protocol/values.js'
import { decodeFileInfo, type FileInfo } from '../protocol/replies.js'
import { BodyDecoder } from '../streams/body-decoder.js'
import { BodyEncoder } from '../streams/body-encoder.js'
import { hashVerifier } from '../streams/hash-verifier.js'
import { readReply, type Reply } from '../net/connection.js'

/**
 * The bytes of one request, once the client has picked the node: a deposit's body up, a file or a list's lines
 * down. The client hashes what it sends (the hash rides in the trailer, so a file is read once) and checks the
 * hash of what it receives before it reports success.
 */
const MAX_LIST_LINE = 64 * 1024

export interface UploadOptions {
  size?: number
  onBytes?: (bytes: number) => void
  /** How long to wait for the reply once the body is sent (default 10 minutes). */
  commitTimeoutMs?: number
  /** A resumed deposit: the source still starts at byte 0 (the trailer hashes the whole file), the wire at this. */
  offset?: number
}

/** Sends a deposit on a connected socket; resolves with the reply's fields. */
export async function upload(socket: Socket, request: DepositRequest, source: Readable, options: UploadOptions): Promise<Fields> {
  const reply = readReply(socket)
  const hasher = hashVerifier({ onBytes: options.onBytes })
  const encoder = new BodyEncoder({
    chunked: options.size === undefined,
    trailer: () => ({ size: hasher.bytes, hash: hasher.digest! }),
  })
  // A refusal can come before the body is through (NO_REPLICAS, NOT_PRIMARY...): stop sending at once.
  const refused = new AbortController()
  reply.catch(() => refused.abort())
  socket.write(encodeRequest(request))
  const firstFailure = whoFailedFirst({ source, hasher, encoder, socket })
  try {
    await pipeline(source, hasher, skipFirst(options.offset ?? 0), encoder, socket, { signal: refused.signal })
  } catch (err) {
    socket.destroy()
    const answer = await reply.then(
      () => undefined,
      (e: unknown) => toDepositoError(e, 'CONNECTION_LOST'),
    )
    // We stopped because the reply side failed first (a refusal, or the server vanished): that is the cause.
    // Otherwise the server's own reason still beats our side's symptom (a reset), and a local read error stays ours.
    // (Checked on the error, not the signal: our own failure also ends the reply and fires the signal, later.)
    const stoppedByReply = (err as Error).name === 'AbortError'
    if (answer && (stoppedByReply || answer.code !== 'CONNECTION_LOST')) throw answer
    throw firstFailure() === 'source' ? localIoError(err, 'could not read the input') : toDepositoError(err, 'IO_ERROR')
  }
  // Everything is sent; the server now fsyncs and commits, which for a large file on a slow disk can outlast
  // the idle timeout meant for a stalled peer.
  socket.setTimeout(options.commitTimeoutMs ?? 10 * 60_000)
  const { fields } = await reply
  socket.destroy()
  return fields
}

/** Drops the first `count` bytes: a resumed deposit's prefix, hashed here but already on the server. */
export function skipFirst(count: number): Transform {
  let left = count
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      if (left === 0) return cb(null, chunk)
      const skip = Math.min(left, chunk.length)
      left -= skip
      cb(null, skip === chunk.length ? undefined : chunk.subarray(skip))
    },
  })
}

/**
 * A retrieval continuing from `offset` bytes the caller already holds, whose sha256 state is `hash`. If the server
 * ignores the offset (older than resumable transfers: its reply names no offset) it sends from byte 0, and
 * `fromZero` says how many of those bytes to drop (0 once a file has been truncated to start over).
 */
export interface DownloadResume {
  offset: number
  hash: Hash
  fromZero: () => Promise<number>
  fresh: () => Hash
}

/** Streams a retrieve's body into `sink`; rejects with HASH_MISMATCH if the bytes are not the ones deposited. */
export async function download(
  { fields, body, socket }: Reply & { socket: Socket },
  sink: Writable,
  onBytes?: (bytes: number, info: FileInfo) => void,
  resume?: DownloadResume,
): Promise<FileInfo> {
  try {
    const info = decodeFileInfo(fields)
    const served = fields.offset === undefined ? 0 : replyCount(fields, 'offset')
    const asked = resume?.offset ?? 0
    if (served !== 0 && served !== asked) throw new DepositoError('PROTOCOL_ERROR', `asked for bytes from ${asked}, the server sent from ${served}`)
    const skip = asked > 0 && served === 0 ? await resume!.fromZero() : 0
    const hash = served > 0 ? resume!.hash : asked > 0 ? resume!.fresh() : undefined
    const decoder = new BodyDecoder({ size: info.size - served, trailer: false })
    const verifier = hashVerifier({ expected: () => info.sha256, hash, start: served, onBytes: onBytes && ((n) => onBytes(n, info)) })
    // A failing output (a full local disk, a closed pipe downstream) is a local problem, not a network one.
    const firstFailure = whoFailedFirst({ body, decoder, verifier, sink })
    await pipeline(body, decoder, verifier, skipFirst(skip), sink).catch((err: unknown) => {
      if (firstFailure() === 'sink') throw localIoError(err, 'could not write the output')
      const e = toDepositoError(err, 'IO_ERROR')
      if (e.code !== 'BAD_BODY') throw e
      // Fewer bytes than announced: the connection was cut. More: the server broke the protocol.
      const short = decoder.result.size < info.size - served
      throw new DepositoError(short ? 'CONNECTION_LOST' : 'PROTOCOL_ERROR', `the server ${short ? 'stopped sending' : 'sent too much'}: ${e.message}`)
    })
    return info
  } finally {
    socket.destroy()
  }
}

/** A reply that announces a count in `countField`, then sends that many lines (of `op`), each parsed by `parse`. */
export async function readLines<T>(
  { fields, body, socket }: Reply & { socket: Socket },
  op: string,
  countField: string,
  noun: string,
  parse: (fields: Fields) => T,
): Promise<{ fields: Fields; items: T[] }> {
  try {
    const expected = replyCount(fields, countField)
    const items: T[] = []
    const collect = new Writable({
      objectMode: true,
      write(line: string, _enc, cb) {
        try {
          items.push(parse(decodeFields(line)))
          cb()
        } catch (err) {
          cb(new DepositoError('PROTOCOL_ERROR', `unreadable ${op} line: ${(err as Error).message}`))
        }
      },
    })
    // Lines are capped like the status line: a hostile server cannot grow one without bound.
    await pipeline(body, split2({ maxLength: MAX_LIST_LINE }), collect)
    if (items.length !== expected) {
      throw new DepositoError('CONNECTION_LOST', `the server announced ${expected} ${noun} and sent ${items.length}`)
    }
    return { fields, items }
  } finally {
    socket.destroy()
  }
}

/**
 * A pipeline destroys every stage with the first error, so after the fact a local file's failure and the
 * network's look alike; the stage that emitted 'error' first is the one that failed.
 */
function whoFailedFirst<K extends string>(streams: Record<K, NodeJS.EventEmitter>): () => K | undefined {
  let first: K | undefined
  for (const [key, stream] of Object.entries(streams) as [K, NodeJS.EventEmitter][]) stream.once('error', () => (first ??= key))
  return () => first
}

/** A count in a server's reply; a missing or malformed one is the server breaking the protocol. */
export function replyCount(fields: Fields, key: string): number {
  try {
    return parseCount(key, fields[key] ?? '')
  } catch {
    throw new DepositoError('PROTOCOL_ERROR', `the reply's ${key} is not a count: ${JSON.stringify(fields[key] ?? null)}`)
  }
}
