import type { Socket } from 'node:net'
import { parseAddress } from '../net/address.js'
import { openConnection, readReply, type ConnectOptions, type Reply } from '../net/connection.js'
import type { Fields } from '../protocol/fields.js'
import type { PeerAuth } from './peer-auth.js'

type RequestFields = Record<string, string | number | undefined>

/**
 * A node speaking to another node: the same one-request connections as a client, with every header signed.
 * It reuses the client's connection code, since a primary pushing a replica is, on the wire, a client.
 *
 * Callers name a peer by node id (or, before it is a member, by address); `resolve` turns that into the address
 * to dial at the moment of each call (Membership.resolve on a primary), so a mirror that moved is dialled where
 * it is now.
 */
export interface PeerClientOptions extends ConnectOptions {
  resolve?: (node: string) => string
}

export class PeerClient {
  readonly #resolve: (node: string) => string

  constructor(
    readonly auth: PeerAuth,
    readonly options: PeerClientOptions = {},
  ) {
    this.#resolve = options.resolve ?? ((node) => node)
  }

  /** The same peers under other timeouts (heartbeats need short ones). */
  with(options: ConnectOptions): PeerClient {
    return new PeerClient(this.auth, { ...this.options, ...options })
  }

  #connect(node: string): Promise<Socket> {
    return openConnection(parseAddress(this.#resolve(node)), this.options)
  }

  /**
   * A signed request without a body; resolves with the reply's fields. `fields` may depend on the connection
   * (a joining mirror names the local address it reached the primary from).
   */
  async request(node: string, fields: RequestFields | ((socket: Socket) => RequestFields)): Promise<Fields> {
    const socket = await this.#connect(node)
    const reply = readReply(socket)
    socket.end(this.auth.sign(typeof fields === 'function' ? fields(socket) : fields))
    try {
      return (await reply).fields
    } finally {
      socket.destroy()
    }
  }

  /**
   * A signed request without a body whose reply has one (lines, for `holdings`): the caller reads `body` and
   * destroys `socket` when done.
   */
  async stream(node: string, fields: RequestFields): Promise<Reply & { socket: Socket }> {
    const socket = await this.#connect(node)
    const reply = readReply(socket)
    socket.end(this.auth.sign(fields))
    try {
      return { ...(await reply), socket }
    } catch (err) {
      socket.destroy()
      throw err
    }
  }

  /**
   * Opens a signed request whose body the caller streams into `socket` (ending it marks the end of the body).
   * `reply` settles with the peer's answer; it rejects if the peer refuses or the connection drops.
   */
  async open(node: string, fields: RequestFields): Promise<{ socket: Socket; reply: Promise<Fields> }> {
    const socket = await this.#connect(node)
    const reply = readReply(socket).then(({ fields: f }) => f)
    reply.catch(() => {})
    socket.write(this.auth.sign(fields))
    return { socket, reply }
  }
}
