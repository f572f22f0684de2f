import { connect, type Socket } from 'node:net'
import { connect as connectTls, type TLSSocket } from 'node:tls'
import { DepositoError, toDepositoError } from '../protocol/errors.js'
import { type Request, encodeRequest } from '../protocol/messages.js'
import { parseReply } from '../protocol/replies.js'
import type { Fields } from '../protocol/fields.js'
import { HeaderSplitter } from '../streams/header-splitter.js'
import { formatAddress, type ServerAddress } from './address.js'
import type { Transport } from './tls.js'

/**
 * The client's side of one request: connect, send the header, read the status line. The reply's body (file
 * bytes for retrieve, lines for list) stays in the returned splitter, untouched, for the caller to pipe.
 */
export interface ConnectOptions {
  /** Bounds the TCP connect, the TLS handshake and the check of the node's identity together. */
  connectTimeoutMs?: number
  idleTimeoutMs?: number
  /** Whether and how to secure each connection (lib/net/tls.ts); plaintext without one. */
  transport?: Transport
}

const MAX_REPLY_LINE = 64 * 1024

/**
 * Connects to one node. Which node to ask (a primary, or a mirror standing in) is the caller's choice. When the
 * transport asks for TLS, nothing is returned (so no request byte is written) until the node has passed its check.
 */
export async function openConnection(address: ServerAddress, options: ConnectOptions = {}): Promise<Socket> {
  const where = formatAddress(address)
  const { transport } = options
  const secure = transport?.tlsFor(address)
  const target = { host: address.host, port: address.port, allowHalfOpen: true }
  const socket: Socket = secure ? connectTls({ ...secure, ...target }) : connect(target)
  let timer: NodeJS.Timeout | undefined
  // Once TCP is through, a failure before the handshake is (a wrong key, an untrusted fallback certificate, a node
  // that speaks no TLS) is the transport's to explain.
  let handshaking = false
  socket.once('connect', () => (handshaking = secure !== undefined))
  try {
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(Object.assign(new Error('connect timed out'), { code: 'ETIMEDOUT' })), options.connectTimeoutMs ?? 10_000)
    })
    const failed = new Promise<never>((_, reject) => socket.once('error', reject))
    const connected = new Promise<void>((resolve) => socket.once(secure ? 'secureConnect' : 'connect', resolve))
    await Promise.race([deadline, failed, connected.then(() => secure && transport!.verify?.(socket as TLSSocket, address))])
  } catch (err) {
    socket.destroy()
    if (err instanceof DepositoError) throw err
    if (handshaking && (err as NodeJS.ErrnoException).code !== 'ETIMEDOUT') throw transport!.refused(err as Error, where)
    const e = toDepositoError(err, 'UNREACHABLE')
    if (e.code === 'UNREACHABLE' || e.code === 'TIMEOUT') {
      throw new DepositoError('UNREACHABLE', `no server at ${where} — start one with \`npm start\` or pass --server (${e.message})`, { cause: err })
    }
    throw e
  } finally {
    clearTimeout(timer)
  }
  socket.setTimeout(options.idleTimeoutMs ?? 60_000, () =>
    socket.destroy(new DepositoError('TIMEOUT', `the server at ${where} went quiet`)),
  )
  return socket
}

export interface Reply {
  fields: Fields
  body: HeaderSplitter
}

/**
 * Starts reading the reply at once, so an early refusal is seen even while a body is still being sent. `check`
 * sees the reply line as received, before it is believed (a peer's seal).
 */
export function readReply(socket: Socket, check?: (line: string) => void): Promise<Reply> {
  const body = new HeaderSplitter({ maxBytes: MAX_REPLY_LINE, errorCode: 'PROTOCOL_ERROR' })
  socket.pipe(body)
  // Errors reach the caller through `header` and through whatever pipeline reads the body; an unread body that
  // fails after the reply (we hung up first) must not crash the process.
  body.on('error', () => {})
  socket.on('error', (err) => body.destroy(toDepositoError(err, 'CONNECTION_LOST')))
  socket.on('close', () => {
    if (!body.writableEnded) body.destroy(new DepositoError('CONNECTION_LOST', 'the connection dropped before the reply'))
  })
  return body.header.then((line) => {
    check?.(line)
    return { fields: parseReply(line), body }
  })
}

/** For requests without a body: send, half-close, read the status line. */
export async function exchange(address: ServerAddress, request: Request, options?: ConnectOptions): Promise<Reply & { socket: Socket }> {
  const socket = await openConnection(address, options)
  const reply = readReply(socket)
  socket.end(encodeRequest(request))
  try {
    return { ...(await reply), socket }
  } catch (err) {
    socket.destroy()
    throw err
  }
}

/**
 * A request without a body whose connect and reply line must both come within `ms`: a node that accepts and then
 * says nothing (stopped with SIGSTOP, wedged) is as good as absent, and the caller moves on instead of waiting out
 * the idle timeout. The reply's body, if any, is not read.
 */
export async function askWithin(address: ServerAddress, request: Request, ms: number, options: ConnectOptions = {}): Promise<Fields> {
  const started = Date.now()
  const socket = await openConnection(address, { ...options, connectTimeoutMs: ms })
  const silent = () =>
    socket.destroy(new DepositoError('UNREACHABLE', `the server at ${formatAddress(address)} accepted the connection but did not answer within ${ms / 1000} s`))
  const timer = setTimeout(silent, Math.max(0, ms - (Date.now() - started)))
  try {
    const reply = readReply(socket)
    socket.end(encodeRequest(request))
    return (await reply).fields
  } finally {
    clearTimeout(timer)
    socket.destroy()
  }
}
