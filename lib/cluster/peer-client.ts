import type { Socket } from 'node:net'
import { parseAddress } from '../net/address.js'
import { openConnection, readReply, type ConnectOptions, type Reply } from '../net/connection.js'
import { DepositoError } from '../protocol/errors.js'
import type { Fields } from '../protocol/fields.js'
import type { PeerAuth } from './peer-auth.js'

type RequestFields = Record<string, string | number | undefined>

const NODE_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

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
   * Connects, signs the request and starts reading the reply, which is believed only if sealed to this request's
   * nonce; `seal` signs lines that belong to the request (a replicate's trailer).
   */
  async #start(node: string, fields: RequestFields | ((socket: Socket) => RequestFields)) {
    const socket = await this.#connect(node)
    const given = typeof fields === 'function' ? fields(socket) : fields
    // Addressed to the node id it is meant for, under the MAC: a recording replayed to another node (the primary
    // itself, a sibling mirror) is refused there, whatever its nonce.
    const { line, nonce } = this.auth.signRequest(NODE_ID.test(node) ? { ...given, para: node } : given)
    const { seal, check } = this.auth.bind(nonce)
    const reply = readReply(socket, (received) => {
      try {
        check(received, "the peer's reply")
      } catch (err) {
        // What it said may still explain the failure (another secret, a clock far off), but cannot be believed.
        throw new DepositoError('UNAUTHORIZED', `${(err as Error).message}; it said: ${received.slice(0, 200)}`)
      }
    })
    return { socket, line, reply, seal }
  }

  /**
   * A signed request without a body; resolves with the reply's fields. `fields` may depend on the connection
   * (a joining mirror names the local address it reached the primary from).
   */
  async request(node: string, fields: RequestFields | ((socket: Socket) => RequestFields)): Promise<Fields> {
    const { socket, line, reply } = await this.#start(node, fields)
    socket.end(line)
    try {
      return (await reply).fields
    } finally {
      socket.destroy()
    }
  }

  /**
   * A signed request without a body whose reply has one (lines, for `holdings`): the caller reads `body` and
   * destroys `socket` when done. The reply line is authenticated; the lines after it are not.
   */
  async stream(node: string, fields: RequestFields): Promise<Reply & { socket: Socket }> {
    const { socket, line, reply } = await this.#start(node, fields)
    socket.end(line)
    try {
      return { ...(await reply), socket }
    } catch (err) {
      socket.destroy()
      throw err
    }
  }

  /**
   * Opens a signed request whose body the caller streams into `socket` (ending it marks the end of the body),
   * with `seal` for its trailer line. `reply` settles with the peer's answer; it rejects if the peer refuses or
   * the connection drops.
   */
  async open(node: string, fields: RequestFields): Promise<{ socket: Socket; reply: Promise<Fields>; seal: (line: string) => string }> {
    const { socket, line, reply, seal } = await this.#start(node, fields)
    const answer = reply.then(({ fields: f }) => f)
    answer.catch(() => {})
    socket.write(line)
    return { socket, reply: answer, seal }
  }
}
