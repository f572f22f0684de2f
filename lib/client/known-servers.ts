import { join } from 'node:path'
import type { TLSSocket } from 'node:tls'
import { formatAddress, type ServerAddress } from '../net/address.js'
import { fingerprintOf } from '../net/fingerprint.js'
import { TLS_MIN_VERSION, tlsReason, wantsTls, type Transport } from '../net/tls.js'
import { DepositoError } from '../protocol/errors.js'
import { JsonFile } from './json-file.js'

/**
 * Server identity without a CA, as ssh's `StrictHostKeyChecking=accept-new`: the first time the client reaches
 * an address over TLS it saves the certificate's fingerprint in `$DEPOSITO_HOME/known_servers.json`, keyed by the
 * address as dialled (`host:port`); from then on that address must present the same certificate, or the client
 * refuses it (UNTRUSTED) before sending a byte. `--fingerprint` names the certificates to trust instead (pinned
 * out of band): only those are accepted, and each is saved over whatever pin its address had.
 */
export class KnownServers {
  readonly path: string
  readonly #file: JsonFile<string>

  constructor(home: string) {
    this.path = join(home, 'known_servers.json')
    this.#file = new JsonFile(this.path)
  }

  async get(address: string): Promise<string | undefined> {
    return (await this.#file.read())[address]
  }

  /** The pin that stands for `address`: the one already saved, else `fingerprint`, saved now (first use). */
  async claim(address: string, fingerprint: string): Promise<string> {
    return this.#file.update((pins) => (pins[address] ? { result: pins[address] } : { entries: { ...pins, [address]: fingerprint }, result: fingerprint }))
  }

  async set(address: string, fingerprint: string): Promise<void> {
    await this.#file.update((pins) => ({ entries: { ...pins, [address]: fingerprint }, result: undefined }))
  }
}

export interface PinningOptions {
  known: KnownServers
  /** `--tls` / DEPOSITO_TLS=1: TLS on loopback too (non-loopback addresses always get it). */
  tls?: boolean
  /** `--fingerprint`: the only certificates to accept; implies TLS. */
  fingerprints?: string[]
}

/** How a client secures every connection it makes: probes, hello and each request alike. */
export function pinningTransport({ known, tls = false, fingerprints }: PinningOptions): Transport {
  const forced = tls || fingerprints !== undefined
  return {
    // No CA: the chain is not checked, the pin is (verify, below).
    tlsFor: (address) => (wantsTls(forced, address) ? { minVersion: TLS_MIN_VERSION, rejectUnauthorized: false } : undefined),
    async verify(socket: TLSSocket, address: ServerAddress) {
      const where = formatAddress(address)
      const cert = socket.getPeerX509Certificate()
      if (!cert) throw new DepositoError('UNTRUSTED', `the server at ${where} presented no certificate`)
      const presented = fingerprintOf(cert)
      if (fingerprints) {
        if (!fingerprints.includes(presented)) {
          throw new DepositoError('UNTRUSTED', `the server at ${where} presents certificate ${presented}, which is not the --fingerprint given (${fingerprints.join(', ')}); not connecting`)
        }
        await known.set(where, presented)
        return
      }
      const pinned = await known.claim(where, presented)
      if (pinned !== presented) {
        throw new DepositoError(
          'UNTRUSTED',
          `the server at ${where} presents certificate ${presented}, but ${pinned} is pinned for that address in ${known.path}; not connecting. ` +
            `If the node's certificate changed on purpose (a new data dir), check the new fingerprint on the server ` +
            `(\`bin/server fingerprint --data DIR\`, or its \`status\`) and pass --fingerprint ${presented}, or remove the "${where}" line from ${known.path}`,
        )
      }
    },
    refused: (err, where) =>
      new DepositoError('PROTOCOL_ERROR', `TLS handshake with ${where} failed (${tlsReason(err)}): is a deposito node with TLS listening there?`, { cause: err }),
  }
}
