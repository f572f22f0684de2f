import { hkdfSync } from 'node:crypto'
import { isIP } from 'node:net'
import type { ConnectionOptions, TLSSocket } from 'node:tls'
import { DepositoError } from '../protocol/errors.js'
import type { ServerAddress } from './address.js'

/**
 * What TLS means for one outgoing connection. Clients and peers differ only here: a client checks the node's
 * certificate against its pin (lib/client/known-servers.ts), a peer proves it holds the cluster secret through
 * TLS-PSK. Whether to use TLS at all is the same rule for both: always when forced (`--tls`), and by itself for
 * any address that leaves the machine.
 */
export interface Transport {
  /** TLS options to dial `address` with, or undefined for plaintext. */
  tlsFor(address: ServerAddress): ConnectionOptions | undefined
  /** Runs after the handshake and before any byte of the request: throws to refuse the node. */
  verify?(socket: TLSSocket, address: ServerAddress): Promise<void>
  /** What a failed handshake means for this kind of connection. */
  refused(err: Error, where: string): DepositoError
}

/** 127.0.0.0/8, ::1 (also as ::ffff:127.x.y.z) and localhost: addresses whose bytes never leave the machine. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase()
  if (h === 'localhost' || h === '::1') return true
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h
  return isIP(v4) === 4 && v4.startsWith('127.')
}

export function wantsTls(forced: boolean, address: ServerAddress): boolean {
  return forced || !isLoopback(address.host)
}

/** OpenSSL's short reason ("wrong version number"), not its whole error string with source paths. */
export function tlsReason(err: Error): string {
  return (err as Error & { reason?: string }).reason ?? err.message.trim()
}

export const TLS_MIN_VERSION = 'TLSv1.3'

/** External PSKs in TLS 1.3 bind to a hash: offering only a SHA-256 suite keeps OpenSSL from ignoring the key. */
export const PSK_CIPHER = 'TLS_AES_128_GCM_SHA256'
export const PEER_PSK_IDENTITY = 'deposito-peer'

/** The key peers share for TLS: derived, so the secret itself never keys two different things. */
export function peerPsk(secret: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, 'deposito', 'deposito peer psk v1', 32))
}

/**
 * Peers: TLS-PSK keyed by the cluster secret. A node that does not know the key cannot complete the handshake,
 * and one that falls back to its certificate is refused too (it is not trusted: no CA vouches for it).
 */
export function peerTransport(secret: Buffer, forced: boolean): Transport {
  const psk = peerPsk(secret)
  return {
    tlsFor: (address) =>
      wantsTls(forced, address)
        ? {
            minVersion: TLS_MIN_VERSION,
            ciphers: PSK_CIPHER,
            pskCallback: () => ({ psk, identity: PEER_PSK_IDENTITY }),
            checkServerIdentity: () => undefined,
          }
        : undefined,
    refused: (err, where) =>
      new DepositoError('UNAUTHORIZED', `TLS handshake with the peer at ${where} failed: is the cluster secret the same on both nodes? (${tlsReason(err)})`, { cause: err }),
  }
}
