import { connect, type Socket } from 'node:net'
import { DepositoError, toDepositoError } from '../protocol/errors.js'
import { parseReply, type Request, encodeRequest } from '../protocol/messages.js'
import type { Fields } from '../protocol/fields.js'
import { HeaderSplitter } from '../streams/header-splitter.js'
import { formatAddress, type ServerAddress } from './address.js'

/**
 * The client's side of one request: connect, send the header, read the status line. The reply's body (file
 * bytes for retrieve, lines for list) stays in the returned splitter, untouched, for the caller to pipe.
 */
export interface ConnectOptions {
  connectTimeoutMs?: number
  idleTimeoutMs?: number
}

const MAX_REPLY_LINE = 64 * 1024

/**
 * Connects to the first address that answers, in order: a primary first, then its mirrors, so reads go on
 * when the primary is down. Only a failure to connect moves on; anything said over a connection stands.
 */
export async function openConnection(addresses: ServerAddress | ServerAddress[], options: ConnectOptions = {}): Promise<Socket> {
  const list = Array.isArray(addresses) ? addresses : [addresses]
  for (let i = 0; ; i++) {
    try {
      return await connectTo(list[i]!, options)
    } catch (err) {
      if (i === list.length - 1 || (err as DepositoError).code !== 'UNREACHABLE') throw err
    }
  }
}

async function connectTo(address: ServerAddress, options: ConnectOptions): Promise<Socket> {
  const where = formatAddress(address)
  const socket = connect({ host: address.host, port: address.port, allowHalfOpen: true })
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(Object.assign(new Error('connect timed out'), { code: 'ETIMEDOUT' })), options.connectTimeoutMs ?? 10_000)
      socket.once('connect', () => {
        clearTimeout(timer)
        resolve()
      })
      socket.once('error', (err) => {
        clearTimeout(timer)
        reject(err)
      })
    })
  } catch (err) {
    socket.destroy()
    const e = toDepositoError(err, 'UNREACHABLE')
    if (e.code === 'UNREACHABLE' || e.code === 'TIMEOUT') {
      throw new DepositoError('UNREACHABLE', `no server at ${where} — start one with \`npm start\` or pass --server (${e.message})`, { cause: err })
    }
    throw e
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

/** Starts reading the reply at once, so an early refusal is seen even while a body is still being sent. */
export function readReply(socket: Socket): Promise<Reply> {
  const body = new HeaderSplitter({ maxBytes: MAX_REPLY_LINE, errorCode: 'PROTOCOL_ERROR' })
  socket.pipe(body)
  // Errors reach the caller through `header` and through whatever pipeline reads the body; an unread body that
  // fails after the reply (we hung up first) must not crash the process.
  body.on('error', () => {})
  socket.on('error', (err) => body.destroy(toDepositoError(err, 'CONNECTION_LOST')))
  socket.on('close', () => {
    if (!body.writableEnded) body.destroy(new DepositoError('CONNECTION_LOST', 'the connection dropped before the reply'))
  })
  return body.header.then((line) => ({ fields: parseReply(line), body }))
}

/** For requests without a body: send, half-close, read the status line. */
export async function exchange(
  addresses: ServerAddress | ServerAddress[],
  request: Request,
  options?: ConnectOptions,
): Promise<Reply & { socket: Socket }> {
  const socket = await openConnection(addresses, options)
  const reply = readReply(socket)
  socket.end(encodeRequest(request))
  try {
    return { ...(await reply), socket }
  } catch (err) {
    socket.destroy()
    throw err
  }
}
