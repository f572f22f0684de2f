import { createHash, X509Certificate } from 'node:crypto'
import { DepositoError } from '../protocol/errors.js'

/**
 * A node's identity is its certificate, not its address (as Syncthing and ssh do): the SHA-256 of the
 * certificate's DER, written `sha256:<64 lowercase hex>`. People paste fingerprints from many places, so the
 * bare hex and openssl's colon-separated upper-case form are read too.
 */
export function fingerprintOf(cert: X509Certificate | Buffer): string {
  const der = cert instanceof X509Certificate ? cert.raw : cert
  return `sha256:${createHash('sha256').update(der).digest('hex')}`
}

export function parseFingerprint(text: string): string {
  const hex = text
    .trim()
    .replace(/^sha256( fingerprint=|:)/i, '')
    .replace(/:/g, '')
    .toLowerCase()
  if (!/^[0-9a-f]{64}$/.test(hex)) {
    throw new DepositoError('USAGE', `bad fingerprint ${JSON.stringify(text)}; expected sha256:<64 hex digits> as \`bin/server fingerprint\` prints it`)
  }
  return `sha256:${hex}`
}
