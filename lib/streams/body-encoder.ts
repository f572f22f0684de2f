import { Transform, type TransformCallback } from 'node:stream'
import { encodeFields } from '../protocol/fields.js'

/**
 * The sending half of BodyDecoder: frames file bytes for the wire and appends the trailer line that carries what
 * was only known at the end (the size of a pipe, the hash of anything). `trailer` is read at flush time, after
 * the upstream hasher has seen every byte.
 */
export interface BodyEncoderOptions {
  chunked: boolean
  trailer: () => { size: number; hash: string }
  /** Signs the trailer line (a peer's replicate: PeerClient.open's `seal`). */
  seal?: (line: string) => string
}

export class BodyEncoder extends Transform {
  readonly #chunked: boolean
  readonly #trailer: BodyEncoderOptions['trailer']
  readonly #seal: (line: string) => string

  constructor({ chunked, trailer, seal = (line) => line }: BodyEncoderOptions) {
    super()
    this.#chunked = chunked
    this.#trailer = trailer
    this.#seal = seal
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (chunk.length === 0) return cb()
    if (this.#chunked) this.push(chunk.length.toString(16) + '\n')
    cb(null, chunk)
  }

  override _flush(cb: TransformCallback): void {
    const { size, hash } = this.#trailer()
    cb(null, (this.#chunked ? '0\n' : '') + this.#seal(encodeFields({ tamanho_arquivo: size, hash_arquivo: hash })))
  }
}
