import { Transform, type TransformCallback } from 'node:stream'
import { DepositoError } from '../protocol/errors.js'
import { decodeFields } from '../protocol/fields.js'
import { parseCount, parseHash } from '../protocol/values.js'

/**
 * Turns a deposit's framed body back into the file's bytes.
 *
 * Two framings (PROTOCOL.md, "Bodies"):
 * - fixed: exactly `size` raw bytes, then, if the header said `hash_arquivo:*`, one trailer line;
 * - chunked (size unknown up front): `<hex length>\n<bytes>` repeated, `0\n`, then the trailer line.
 * The trailer is `tamanho_arquivo:N|hash_arquivo:H\n`. File bytes are pushed as subarrays of the input, never
 * copied or collected. Anything after the end of the body, a short body, or a malformed chunk line errors the
 * stream with BAD_BODY; nothing is guessed.
 */
export interface BodyFraming {
  /** Null: chunked. */
  size: number | null
  /** Whether a trailer line follows the bytes (always true when chunked). */
  trailer: boolean
  maxTrailerBytes?: number
  /** Checks the trailer line as received (a peer's seal) before its fields are read; throws to refuse it. */
  checkTrailer?: (line: string) => void
  /**
   * Bytes of the file that came before this body (a resumed deposit, which sends bytes K..N-1): the trailer's
   * tamanho_arquivo and the result speak of the whole file, so they count these too.
   */
  offset?: number
}

export interface BodyResult {
  size: number
  /** The trailer's hash_arquivo, if a trailer was expected. */
  hash: string | null
}

type State = 'data' | 'chunk-size' | 'trailer' | 'done'
const HEX = /^[0-9a-fA-F]{1,13}$/
const MAX_CHUNK_LINE = 16

export class BodyDecoder extends Transform {
  readonly #chunked: boolean
  readonly #declaredSize: number | null
  readonly #trailer: boolean
  readonly #maxTrailerBytes: number
  readonly #checkTrailerSeal: ((line: string) => void) | undefined
  #state: State
  #remaining = 0
  #count = 0
  #line: Buffer[] = []
  #lineBytes = 0
  #trailerHash: string | null = null
  readonly #offset: number

  constructor({ size, trailer, maxTrailerBytes = 1024, checkTrailer, offset = 0 }: BodyFraming) {
    super()
    this.#offset = offset
    this.#checkTrailerSeal = checkTrailer
    this.#chunked = size === null
    this.#declaredSize = size
    this.#trailer = trailer || size === null
    this.#maxTrailerBytes = maxTrailerBytes
    if (size === null) this.#state = 'chunk-size'
    else {
      this.#remaining = size
      this.#state = size > 0 ? 'data' : this.#afterData()
    }
  }

  /** Valid once the stream has ended without error. */
  get result(): BodyResult {
    return { size: this.#offset + this.#count, hash: this.#trailerHash }
  }

  #afterData(): State {
    if (this.#chunked) return 'chunk-size'
    return this.#trailer ? 'trailer' : 'done'
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      this.#consume(chunk)
      cb()
    } catch (err) {
      cb(err as Error)
    }
  }

  #consume(chunk: Buffer): void {
    let off = 0
    while (off < chunk.length) {
      if (this.#state === 'data') {
        const n = Math.min(this.#remaining, chunk.length - off)
        this.push(chunk.subarray(off, off + n))
        off += n
        this.#remaining -= n
        this.#count += n
        if (this.#remaining === 0) this.#state = this.#afterData()
      } else if (this.#state === 'done') {
        throw new DepositoError('BAD_BODY', 'more bytes than tamanho_arquivo announced')
      } else {
        const nl = chunk.indexOf(10, off)
        const end = nl === -1 ? chunk.length : nl
        this.#appendLine(chunk.subarray(off, end))
        if (nl === -1) return
        off = nl + 1
        const line = Buffer.concat(this.#line, this.#lineBytes).toString('utf8')
        this.#line = []
        this.#lineBytes = 0
        if (this.#state === 'chunk-size') this.#startChunk(line)
        else this.#readTrailer(line)
      }
    }
  }

  #appendLine(part: Buffer): void {
    const limit = this.#state === 'chunk-size' ? MAX_CHUNK_LINE : this.#maxTrailerBytes
    this.#lineBytes += part.length
    if (this.#lineBytes > limit) {
      throw new DepositoError('BAD_BODY', this.#state === 'chunk-size' ? 'chunk length line too long' : 'trailer line too long')
    }
    this.#line.push(part)
  }

  #startChunk(line: string): void {
    const text = line.endsWith('\r') ? line.slice(0, -1) : line
    if (!HEX.test(text)) throw new DepositoError('BAD_BODY', `bad chunk length ${JSON.stringify(text)}`)
    const n = parseInt(text, 16)
    if (n === 0) this.#state = 'trailer'
    else {
      this.#remaining = n
      this.#state = 'data'
    }
  }

  #readTrailer(line: string): void {
    this.#checkTrailerSeal?.(line)
    try {
      this.#checkTrailer(line)
    } catch (err) {
      // The shared parsers speak of headers; a bad trailer is a bad body.
      throw err instanceof DepositoError && err.code === 'BAD_BODY' ? err : new DepositoError('BAD_BODY', `bad trailer: ${(err as Error).message}`)
    }
    this.#state = 'done'
  }

  #checkTrailer(line: string): void {
    const fields = decodeFields(line)
    const size = fields.tamanho_arquivo
    if (size === undefined && this.#chunked) throw new DepositoError('BAD_BODY', 'trailer misses tamanho_arquivo')
    if (size !== undefined && parseCount('tamanho_arquivo', size) !== this.#offset + this.#count) {
      throw new DepositoError('BAD_BODY', `trailer says ${size} bytes but the body had ${this.#offset + this.#count}`)
    }
    if (fields.hash_arquivo === undefined) throw new DepositoError('BAD_BODY', 'trailer misses hash_arquivo')
    this.#trailerHash = parseHash('hash_arquivo', fields.hash_arquivo)
  }

  override _flush(cb: TransformCallback): void {
    if (this.#state === 'done') return cb()
    let reason: string
    if (this.#state === 'data' && !this.#chunked) reason = `body ended after ${this.#count} of ${this.#declaredSize} bytes`
    else if (this.#state === 'trailer') reason = 'body ended before its trailer line'
    else reason = 'chunked body ended before its 0-length terminator'
    cb(new DepositoError('BAD_BODY', reason))
  }
}
