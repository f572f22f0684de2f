import { DepositoError, isErrorCode, type ErrorCode } from './errors.js'
import { decodeFields, encodeFields, type Fields } from './fields.js'
import { parseCount, parseHash, parseName, required } from './values.js'

/** What the server knows about one stored file; also one line of a `list` reply. */
export interface FileInfo {
  name: string
  size: number
  sha256: string
  replicas: number
  /** ISO 8601, when this version was deposited. */
  storedAt: string
  /** On a primary: the mirrors that confirmed a copy of this version (absent on mirrors and lone nodes). */
  mirrors?: string[]
}

export function encodeFileInfo(info: FileInfo): Record<string, string | number | undefined> {
  return {
    nome_arquivo: info.name,
    tamanho_arquivo: info.size,
    hash_arquivo: info.sha256,
    qtd_replicas: info.replicas,
    data: info.storedAt,
    espelhos: info.mirrors?.join(','),
  }
}

/** Reads file fields from a server's reply; anything wrong with them is the server breaking the protocol. */
export function decodeFileInfo(fields: Fields): FileInfo {
  try {
    const storedAt = required(fields, 'data')
    if (Number.isNaN(Date.parse(storedAt))) throw new Error(`bad date ${storedAt}`)
    return {
      name: parseName(required(fields, 'nome_arquivo')),
      size: parseCount('tamanho_arquivo', required(fields, 'tamanho_arquivo')),
      sha256: parseHash('hash_arquivo', required(fields, 'hash_arquivo')),
      replicas: parseCount('qtd_replicas', required(fields, 'qtd_replicas')),
      storedAt,
      ...(fields.espelhos === undefined ? {} : { mirrors: fields.espelhos === '' ? [] : fields.espelhos.split(',') }),
    }
  } catch (err) {
    throw new DepositoError('PROTOCOL_ERROR', `unreadable file fields in the reply: ${(err as Error).message}`)
  }
}

export function encodeOk(fields: Record<string, string | number | undefined> = {}): string {
  return encodeFields({ status: 'ok', ...fields })
}

export function encodeError(err: DepositoError): string {
  // One line, whatever the message held: the codec escapes newlines.
  return encodeFields({ status: 'error', code: err.code, message: err.message, primario: err.details.primary })
}

/** Parses a reply line; a `status:error` reply becomes a thrown DepositoError carrying the server's code. */
export function parseReply(line: string): Fields {
  let fields: Fields
  try {
    fields = decodeFields(line)
  } catch (err) {
    throw new DepositoError('PROTOCOL_ERROR', `unreadable reply: ${(err as Error).message}`)
  }
  if (fields.status === 'ok') return fields
  if (fields.status === 'error') {
    const code: ErrorCode = fields.code !== undefined && isErrorCode(fields.code) ? fields.code : 'INTERNAL'
    throw new DepositoError(code, fields.message ?? code, fields.primario === undefined ? undefined : { details: { primary: fields.primario } })
  }
  throw new DepositoError('PROTOCOL_ERROR', `reply without a status: ${line.slice(0, 80)}`)
}
