import type { Socket } from 'node:net'
import { createSecureContext, TLSSocket, type SecureContext, type TLSSocketOptions, type TlsOptions } from 'node:tls'
import type { Logger } from 'pino'
import { PEER_PSK_IDENTITY, TLS_MIN_VERSION, peerPsk, tlsReason } from '../net/tls.js'
import { DepositoError } from '../protocol/errors.js'
import { encodeError } from '../protocol/replies.js'
import type { NodeCertificate } from './node-cert.js'

/**
 * What arrives on a node's one port, before it is a request: TLS or plaintext, told apart by the first byte (a
 * TLS record starts with 0x16, a handshake; no request line can, as keys start with a letter). TLS connections
 * are served with the node's certificate (clients, who pin it) or a key derived from the cluster secret (peers,
 * TLS-PSK); only TLS 1.3 is spoken. Plaintext is served only where allowed, else answered with TLS_REQUIRED.
 *
 * Until its handshake is through a connection is not the server's to count: it is held here, under a deadline,
 * and when `maxPending` are waiting the oldest is dropped first (a silent socket must not keep anyone out).
 */
export interface ListenerOptions {
  certificate: NodeCertificate
  /** The cluster secret: peers that know it are served over TLS-PSK. */
  secret?: Buffer
  /** Whether plaintext is served at all (loopback without --tls, or --insecure-plaintext). */
  plaintext: boolean
  handshakeTimeoutMs: number
  /** A connection silent this long before its first byte is told TIMEOUT (where plaintext is spoken) and closed. */
  idleTimeoutMs: number
  maxPending: number
  lingerMs: number
  log: Logger
}

const TLS_HANDSHAKE = 0x16

// Connections that authenticated with the cluster's key rather than a client's view of the certificate.
const pskPeers = new WeakSet<Socket>()

/** True for a connection whose TLS handshake proved it holds the cluster secret (a peer, not a client). */
export function isPskPeer(socket: Socket): boolean {
  return pskPeers.has(socket)
}

export const PLAINTEXT_REFUSAL = 'this node accepts only TLS: use --tls (bin/client) or DEPOSITO_TLS=1'

interface Pending {
  socket: Socket
  timer: NodeJS.Timeout
  /** Its first byte has arrived (a TLS handshake may still be under way). */
  spoke: boolean
}

export class Listener {
  readonly #options: ListenerOptions
  readonly #accept: (socket: Socket) => void
  readonly #context: SecureContext
  readonly #psk: Buffer | undefined
  /** In arrival order (a Set keeps it), so the first is the oldest. */
  readonly #pending = new Set<Pending>()

  constructor(options: ListenerOptions, accept: (socket: Socket) => void) {
    this.#options = options
    this.#accept = accept
    const { key, cert } = options.certificate
    this.#context = createSecureContext({ key, cert, minVersion: TLS_MIN_VERSION })
    this.#psk = options.secret && peerPsk(options.secret)
  }

  /** The `connection` handler of the node's net.Server. */
  handle(raw: Socket): void {
    if (this.#pending.size >= this.#options.maxPending) this.#drop(this.#pending.values().next().value!)
    const { handshakeTimeoutMs, idleTimeoutMs } = this.#options
    const pending: Pending = { socket: raw, spoke: false, timer: setTimeout(() => this.#expire(pending), Math.min(handshakeTimeoutMs, idleTimeoutMs)) }
    this.#pending.add(pending)
    raw.on('error', () => {})
    raw.once('close', () => this.#settle(pending))
    raw.once('readable', () => {
      const first = raw.read(1) as Buffer | null
      // Closed before a byte: nothing to serve.
      if (first === null) return void raw.destroy()
      raw.unshift(first)
      pending.spoke = true
      if (first[0] === TLS_HANDSHAKE) this.#secure(pending)
      else if (this.#options.plaintext) this.#handOver(pending, raw)
      else this.#refuse(pending, new DepositoError('TLS_REQUIRED', PLAINTEXT_REFUSAL), 'refused a plaintext connection')
    })
  }

  /** The node is stopping: connections not yet served go, told why where they would understand the line. */
  close(): void {
    for (const p of this.#pending) this.#expire(p, new DepositoError('SHUTTING_DOWN', 'the server is stopping'))
  }

  #secure(pending: Pending): void {
    // Node takes pskCallback on a TLSSocket as on a tls.Server, but its types list it only for the latter.
    const options: TLSSocketOptions & Pick<TlsOptions, 'pskCallback'> = {
      isServer: true,
      secureContext: this.#context,
      pskCallback: (tlsSocket, identity) => {
        if (identity !== PEER_PSK_IDENTITY || !this.#psk) return null
        pskPeers.add(tlsSocket)
        return this.#psk
      },
    }
    const socket = new TLSSocket(pending.socket, options)
    pending.socket = socket
    socket.once('close', () => this.#settle(pending))
    const failed = (err: Error) => {
      // A peer with another secret is worth an operator's attention; anything else at the door is noise.
      const level = isPskPeer(socket) ? 'warn' : 'debug'
      this.#options.log[level]({ peer: remote(socket), reason: tlsReason(err) }, 'TLS handshake failed')
      socket.destroy()
    }
    socket.on('error', failed)
    socket.once('secure', () => {
      socket.off('error', failed)
      this.#handOver(pending, socket)
    })
  }

  #handOver(pending: Pending, socket: Socket): void {
    this.#settle(pending)
    this.#accept(socket)
  }

  /** A silent connection is told why it goes where it would understand the line; a stalled handshake just goes. */
  #expire(pending: Pending, why = new DepositoError('TIMEOUT', 'nothing received; closing')): void {
    if (pending.spoke || !this.#options.plaintext) return this.#drop(pending)
    this.#refuse(pending, why)
  }

  #refuse(pending: Pending, err: DepositoError, what?: string): void {
    const { socket } = pending
    this.#settle(pending)
    if (what) this.#options.log.warn({ peer: remote(socket), code: err.code }, what)
    refuseConnection(socket, err, this.#options.lingerMs)
  }

  #settle(pending: Pending): void {
    clearTimeout(pending.timer)
    this.#pending.delete(pending)
  }

  #drop(pending: Pending): void {
    this.#settle(pending)
    pending.socket.destroy()
  }
}

/**
 * Answers a connection no request will be served on with one error line, then closes it after `lingerMs`. What the
 * client sends meanwhile is read and discarded: closing with unread bytes resets the connection, and the reset
 * could overtake the refusal line.
 */
export function refuseConnection(socket: Socket, err: DepositoError, lingerMs: number): void {
  socket.on('error', () => {})
  socket.end(encodeError(err))
  socket.resume()
  setTimeout(() => socket.destroy(), lingerMs).unref()
}

function remote(socket: Socket): string {
  return `${socket.remoteAddress}:${socket.remotePort}`
}
