import { createHmac, timingSafeEqual } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { DepositoError } from '../protocol/errors.js'
import { encodeFields } from '../protocol/fields.js'

/**
 * Peer requests (join, ping, replicate, drop, scrub, holdings) are signed with the cluster secret: the sender appends
 * `|auth:<hex HMAC-SHA256 of everything before it>` to a line that carries `ts` (its clock, in ms). The receiver
 * checks the MAC over the exact bytes it received, in constant time, and refuses a `ts` more than `maxSkewMs`
 * away from its own clock, which bounds replays to that window. A client id, however valid, cannot sign.
 */
const AUTH = '|auth:'

export class PeerAuth {
  readonly #secret: Buffer
  readonly #maxSkewMs: number

  constructor(secret: Buffer, { maxSkewMs = 120_000 } = {}) {
    if (secret.length < 16) throw new DepositoError('USAGE', 'the cluster secret must be at least 16 bytes')
    this.#secret = secret
    this.#maxSkewMs = maxSkewMs
  }

  #mac(text: string): string {
    return createHmac('sha256', this.#secret).update(text).digest('hex')
  }

  /** Encodes a signed request line, newline included. */
  sign(fields: Record<string, string | number | undefined>, now = Date.now()): string {
    const body = encodeFields({ ...fields, ts: now }).slice(0, -1)
    return `${body}${AUTH}${this.#mac(body)}\n`
  }

  /** Throws UNAUTHORIZED unless `line` (without its newline) was signed with our secret, recently. */
  verify(line: string, fields: Record<string, string>, now = Date.now()): void {
    const at = line.lastIndexOf(AUTH)
    const given = at === -1 ? '' : line.slice(at + AUTH.length)
    // No signature at all must fail before any comparison: two empty strings compare equal.
    if (!/^[0-9a-f]{64}$/.test(given) || !timingSafeEqual(Buffer.from(given), Buffer.from(this.#mac(line.slice(0, at))))) {
      throw new DepositoError('UNAUTHORIZED', 'peer request without a valid cluster signature')
    }
    const ts = Number(fields.ts)
    if (!Number.isFinite(ts) || Math.abs(now - ts) > this.#maxSkewMs) {
      throw new DepositoError('UNAUTHORIZED', 'peer request too old or from a clock too far off')
    }
  }
}

/** The secret from `--secret-file` (trailing newline ignored) or the DEPOSITO_SECRET environment variable. */
export async function loadSecret(file: string | undefined, env: NodeJS.ProcessEnv = process.env): Promise<Buffer | undefined> {
  if (file !== undefined) return Buffer.from((await readFile(file, 'utf8')).trim())
  return env.DEPOSITO_SECRET ? Buffer.from(env.DEPOSITO_SECRET) : undefined
}
