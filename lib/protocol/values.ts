import { DepositoError } from './errors.js'

/**
 * The values the wire carries, each checked the one way every message uses: ids (client, node, upload token),
 * names, counts and hashes, and the protocol's constants.
 */
export const PROTOCOL_VERSION = 1
export const DEFAULT_PORT = 7420
export const MAX_NAME_BYTES = 1024
/** `*` in tamanho_arquivo or hash_arquivo: "not known yet, sent in the trailer". */
export const LATER = '*'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/
const SHA256 = /^[0-9a-f]{64}$/
const DECIMAL = /^(0|[1-9][0-9]{0,15})$/

export function parseClientId(value: string): string {
  const id = value.toLowerCase()
  if (!UUID.test(id)) throw new DepositoError('BAD_HEADER', `id_cliente ${JSON.stringify(value.slice(0, 40))} is not a UUID v4`)
  return id
}

/** A node id: a UUID v4, like client ids, but a different namespace (never accepted as the other). */
export function parseNodeId(key: string, value: string): string {
  const id = value.toLowerCase()
  if (!UUID.test(id)) throw new DepositoError('BAD_HEADER', `${key} ${JSON.stringify(value.slice(0, 40))} is not a node id (a UUID v4)`)
  return id
}

/** An upload token: a UUID v4 the client made for one resumable deposit. */
export function parseUploadToken(value: string): string {
  const token = value.toLowerCase()
  if (!UUID.test(token)) throw new DepositoError('BAD_HEADER', `upload ${JSON.stringify(value.slice(0, 40))} is not a UUID v4`)
  return token
}

export function parseName(value: string): string {
  if (value.length === 0) throw new DepositoError('BAD_NAME', 'nome_arquivo is empty')
  if (Buffer.byteLength(value) > MAX_NAME_BYTES) {
    throw new DepositoError('BAD_NAME', `nome_arquivo is longer than ${MAX_NAME_BYTES} bytes`)
  }
  return value
}

export function parseCount(key: string, value: string): number {
  if (!DECIMAL.test(value)) throw new DepositoError('BAD_HEADER', `${key} must be a decimal integer, got ${JSON.stringify(value.slice(0, 40))}`)
  const n = Number(value)
  if (!Number.isSafeInteger(n)) throw new DepositoError('BAD_HEADER', `${key} is too large`)
  return n
}

export function parseHash(key: string, value: string): string {
  const hash = value.toLowerCase()
  if (!SHA256.test(hash)) throw new DepositoError('BAD_HEADER', `${key} must be 64 hex digits of sha256`)
  return hash
}

/** A field a message cannot go without. */
export function required(fields: Record<string, string | undefined>, key: string): string {
  const value = fields[key]
  if (value === undefined) throw new DepositoError('BAD_HEADER', `missing field ${key}`)
  return value
}
