import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { DepositoError } from '../protocol/errors.js'
import { encodeFields } from '../protocol/fields.js'
import { NonceCache } from './nonce-cache.js'

/**
 * Peer requests (join, ping, replicate, drop, scrub, holdings, leave) are signed with the cluster secret: the
 * sender appends `|auth:<hex HMAC-SHA256 of everything before it>` to a line that carries `ts` (its clock, in ms)
 * and `nonce` (16 random bytes, hex). The receiver checks the MAC over the exact bytes it received, in constant
 * time, refuses a `ts` more than `maxSkewMs` from its own clock, and refuses a nonce it has accepted before: a
 * recorded request is good once, and only within the window. A client id, however valid, cannot sign.
 *
 * What else belongs to that request is bound to its nonce: the `replicate` trailer (which carries the hash the
 * body must match) and every reply are sealed with HMAC(secret, nonce + "\n" + line before `|auth:`), so neither
 * can be forged, nor moved from one exchange to another, by anyone without the secret.
 */
const AUTH = '|auth:'
const NONCE = /^[0-9a-f]{32}$/

/** Seals and checks the lines that belong to one request (its trailer, its reply), by that request's nonce. */
export interface NonceSeal {
  /** Appends `|auth:` to a line (newline included on both sides). */
  seal(line: string): string
  /** Throws UNAUTHORIZED unless `line` (without its newline) was sealed for this nonce; `what` names it. */
  check(line: string, what: string): void
}

export class PeerAuth {
  readonly #secret: Buffer
  readonly #maxSkewMs: number
  readonly #seen: NonceCache

  constructor(secret: Buffer, { maxSkewMs = 120_000, maxNonces = 100_000 } = {}) {
    if (secret.length < 16) throw new DepositoError('USAGE', 'the cluster secret must be at least 16 bytes')
    this.#secret = secret
    this.#maxSkewMs = maxSkewMs
    this.#seen = new NonceCache({ windowMs: maxSkewMs, maxEntries: maxNonces })
  }

  #mac(text: string): string {
    return createHmac('sha256', this.#secret).update(text).digest('hex')
  }

  /** True when `line` ends in `|auth:` + the MAC of `prefix` + the text before it, compared in constant time. */
  #authentic(line: string, prefix: string): boolean {
    const at = line.lastIndexOf(AUTH)
    const given = at === -1 ? '' : line.slice(at + AUTH.length)
    // No signature at all must fail before any comparison: two empty strings compare equal.
    return /^[0-9a-f]{64}$/.test(given) && timingSafeEqual(Buffer.from(given), Buffer.from(this.#mac(prefix + line.slice(0, at))))
  }

  /** Encodes a signed request line, newline included, with the nonce its trailer and reply are bound to. */
  signRequest(fields: Record<string, string | number | undefined>, now = Date.now()): { line: string; nonce: string } {
    const nonce = randomBytes(16).toString('hex')
    const body = encodeFields({ ...fields, ts: now, nonce }).slice(0, -1)
    return { line: `${body}${AUTH}${this.#mac(body)}\n`, nonce }
  }

  sign(fields: Record<string, string | number | undefined>, now = Date.now()): string {
    return this.signRequest(fields, now).line
  }

  /**
   * Throws UNAUTHORIZED unless `line` (without its newline) was signed with our secret, recently, and has not
   * been accepted before; returns its nonce. The nonce is remembered only once everything else has passed.
   */
  verify(line: string, fields: Record<string, string>, now = Date.now()): string {
    if (!this.#authentic(line, '')) throw new DepositoError('UNAUTHORIZED', 'peer request without a valid cluster signature')
    const ts = Number(fields.ts)
    if (!Number.isFinite(ts) || Math.abs(now - ts) > this.#maxSkewMs) {
      throw new DepositoError('UNAUTHORIZED', 'peer request too old or from a clock too far off')
    }
    const nonce = fields.nonce
    if (nonce === undefined || !NONCE.test(nonce)) throw new DepositoError('UNAUTHORIZED', 'peer request without a nonce')
    this.#seen.admit(nonce, ts, now)
    return nonce
  }

  /** The seal for lines that belong to the request with this nonce. */
  bind(nonce: string): NonceSeal {
    const prefix = `${nonce}\n`
    return {
      seal: (line) => `${line.slice(0, -1)}${AUTH}${this.#mac(prefix + line.slice(0, -1))}\n`,
      check: (line, what) => {
        if (!this.#authentic(line, prefix)) throw new DepositoError('UNAUTHORIZED', `${what} without a valid cluster signature`)
      },
    }
  }
}

/** The secret from `--secret-file` (trailing newline ignored) or the DEPOSITO_SECRET environment variable. */
export async function loadSecret(file: string | undefined, env: NodeJS.ProcessEnv = process.env): Promise<Buffer | undefined> {
  if (file !== undefined) return Buffer.from((await readFile(file, 'utf8')).trim())
  return env.DEPOSITO_SECRET ? Buffer.from(env.DEPOSITO_SECRET) : undefined
}
