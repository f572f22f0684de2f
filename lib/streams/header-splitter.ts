import { Transform, type TransformCallback } from 'node:stream'
import { DepositoError } from '../protocol/errors.js'

/**
 * Splits the first line off a byte stream and passes every later byte through untouched.
 *
 * Invariants: bytes are held back only until the first `\n`; after it, each incoming chunk is pushed as is (the
 * tail of the chunk that held the newline is a zero-copy subarray), so a body that shares a TCP segment with its
 * header loses nothing. The line is capped at `maxBytes` and must be valid UTF-8; either failure errors the
 * stream with BAD_HEADER before anything downstream sees a byte. `header` settles exactly once: with the line,
 * or with the reason there will never be one (error, or the input ended first).
 */
export interface HeaderSplitterOptions {
  maxBytes: number
  /** Code for a missing or malformed line: BAD_HEADER on a server, PROTOCOL_ERROR on a client reading replies. */
  errorCode?: 'BAD_HEADER' | 'PROTOCOL_ERROR'
}

// ignoreBOM keeps a leading BOM in the line (where it then fails as a key) instead of dropping it silently.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

export class HeaderSplitter extends Transform {
  readonly header: Promise<string>
  #resolve!: (line: string) => void
  #reject!: (err: Error) => void
  #pending: Buffer[] = []
  #pendingBytes = 0
  #found = false
  readonly #maxBytes: number
  readonly #errorCode: 'BAD_HEADER' | 'PROTOCOL_ERROR'

  constructor({ maxBytes, errorCode = 'BAD_HEADER' }: HeaderSplitterOptions) {
    super()
    this.#maxBytes = maxBytes
    this.#errorCode = errorCode
    this.header = new Promise((resolve, reject) => {
      this.#resolve = resolve
      this.#reject = reject
    })
    // Whoever awaits `header` sees the rejection; this only keeps an unobserved one from crashing the process.
    this.header.catch(() => {})
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.#found) return cb(null, chunk)
    const nl = chunk.indexOf(10)
    const lineBytes = this.#pendingBytes + (nl === -1 ? chunk.length : nl)
    if (lineBytes > this.#maxBytes) {
      return cb(new DepositoError(this.#errorCode, `header line longer than ${this.#maxBytes} bytes`))
    }
    if (nl === -1) {
      this.#pending.push(chunk)
      this.#pendingBytes += chunk.length
      return cb()
    }
    this.#pending.push(chunk.subarray(0, nl))
    let line: string
    try {
      line = utf8.decode(Buffer.concat(this.#pending, lineBytes))
    } catch {
      return cb(new DepositoError(this.#errorCode, 'header line is not valid UTF-8'))
    }
    this.#pending = []
    this.#found = true
    this.#resolve(line)
    const rest = chunk.subarray(nl + 1)
    cb(null, rest.length > 0 ? rest : undefined)
  }

  override _flush(cb: TransformCallback): void {
    if (!this.#found) {
      // Nothing at all is a peer that left (a port probe, a crashed client), not a malformed request.
      if (this.#pendingBytes === 0) return cb(new DepositoError('CONNECTION_LOST', 'connection closed before a header line'))
      return cb(new DepositoError(this.#errorCode, 'header line not ended by a newline'))
    }
    cb()
  }

  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    if (!this.#found) this.#reject(err ?? new DepositoError('CONNECTION_LOST', 'stream closed before a header line'))
    cb(err)
  }
}
