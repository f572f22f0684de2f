import { DepositoError } from './errors.js'

/**
 * The line codec shared by requests, replies and trailers: `chave:valor` pairs joined by `|`, ended by `\n`.
 *
 * Values are percent-escaped so that any UTF-8 text survives: `%`, `|` and every control character (which
 * covers `\n` and `\r`) become `%XX`. Everything else may stay raw, so a hand-typed `nome_arquivo:notas.txt` is
 * already valid; a `:` needs no escape because only the first one in a field separates key from value (dates and
 * messages stay readable). Decoding accepts any `%XX` sequence that forms valid UTF-8 and rejects the rest, so a decoded
 * value is always well-formed text.
 */
export type Fields = Record<string, string>

const KEY = /^[a-z][a-z0-9_]*$/
// eslint-disable-next-line no-control-regex
const MUST_ESCAPE = /[%|\u0000-\u001f\u007f]/g
// eslint-disable-next-line no-control-regex
const RAW_CONTROL = /[\u0000-\u001f\u007f]/

export function escapeValue(value: string): string {
  return value.replace(MUST_ESCAPE, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0'))
}

export function unescapeValue(value: string): string {
  try {
    return decodeURIComponent(value)
  } catch {
    throw new DepositoError('BAD_HEADER', `bad percent-escape in value ${JSON.stringify(value.slice(0, 40))}`)
  }
}

/** Encodes a line, newline included. Undefined values are left out so optional fields stay optional. */
export function encodeFields(fields: Record<string, string | number | undefined>): string {
  const parts: string[] = []
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue
    if (!KEY.test(key)) throw new TypeError(`invalid field name ${key}`)
    parts.push(`${key}:${escapeValue(String(value))}`)
  }
  return parts.join('|') + '\n'
}

/** Decodes one line (without its `\n`; a trailing `\r` from a hand-typed line is forgiven). */
export function decodeFields(line: string): Fields {
  const text = line.endsWith('\r') ? line.slice(0, -1) : line
  if (text.length === 0) throw new DepositoError('BAD_HEADER', 'empty line')
  const fields: Fields = Object.create(null)
  for (const part of text.split('|')) {
    const colon = part.indexOf(':')
    if (colon === -1) throw new DepositoError('BAD_HEADER', `field without ':' (${JSON.stringify(part.slice(0, 40))})`)
    const key = part.slice(0, colon)
    if (!KEY.test(key)) throw new DepositoError('BAD_HEADER', `bad field name ${JSON.stringify(key.slice(0, 40))}`)
    if (key in fields) throw new DepositoError('BAD_HEADER', `field ${key} appears twice`)
    const raw = part.slice(colon + 1)
    if (RAW_CONTROL.test(raw)) throw new DepositoError('BAD_HEADER', `unescaped control character in field ${key}`)
    fields[key] = unescapeValue(raw)
  }
  return fields
}
