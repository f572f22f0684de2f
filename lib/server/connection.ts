import type { Socket } from 'node:net'
import type { Readable, Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { Logger } from 'pino'
import { clientTag } from '../protocol/client-tag.js'
import { DepositoError, toDepositoError } from '../protocol/errors.js'
import { decodeFields, type Fields } from '../protocol/fields.js'
import { parseRequest, type Request } from '../protocol/messages.js'
import { encodeError, encodeOk } from '../protocol/replies.js'
import { HeaderSplitter } from '../streams/header-splitter.js'
import type { Admission } from './admission.js'

/**
 * One client connection carries one request: a header line, an optional body, the client's half-close, then the
 * server's reply and close (PROTOCOL.md, "Connections").
 *
 * The socket is piped into the HeaderSplitter rather than placed inside the request's pipeline: a failing body
 * stage (a hash mismatch, a full disk) must tear down the request's streams but keep the socket, which still has
 * to carry the error reply. Socket errors and early closes are forwarded into the splitter, so they still fail
 * every stage downstream of it. After a refusal the socket lingers, discarding input, until the client ends or
 * the linger time passes; closing at once would reset the connection and could eat the error line.
 */
export interface ConnectionLimits {
  maxHeaderBytes: number
  /** The whole request line must be in this long after the accept, however steadily its bytes trickle. */
  headerTimeoutMs: number
  idleTimeoutMs: number
  lingerMs: number
}

/** Seals lines to, and checks lines from, the peer whose request this is (lib/cluster/peer-auth.ts, NonceSeal). */
export interface PeerSeal {
  seal(line: string): string
  check(line: string, what: string): void
}

export type RequestHandler = (request: Request, exchange: Exchange) => Promise<void>

export class Exchange {
  readonly body: HeaderSplitter
  /** The request line as received (peer signatures are checked over these exact bytes), and its fields. */
  headerLine = ''
  headerFields: Fields = {}
  /**
   * Set by peer-handlers once the request is authenticated as a peer's: every reply line is sealed with it (the
   * sender refuses one that is not), and a trailer must carry its seal.
   */
  peerSeal: PeerSeal | undefined
  /** open: nothing said yet; replying: a success line is out and its body is flowing; done: nothing more to say. */
  #state: 'open' | 'replying' | 'done' = 'open'
  #busy = false
  /** Work of ours under way before the body is read (see whileWorking). */
  #working = 0

  constructor(
    readonly socket: Socket,
    public log: Logger,
    readonly limits: ConnectionLimits,
    readonly admission: Admission,
  ) {
    this.body = new HeaderSplitter({ maxBytes: limits.maxHeaderBytes })
    socket.pipe(this.body)
    // Its failures reach serve() through `header` or through the body's pipeline; none may crash the node.
    this.body.on('error', () => {})
    socket.on('error', (err) => this.body.destroy(err))
    socket.on('close', () => {
      admission.remove(this)
      if (!this.body.writableEnded) this.body.destroy(new DepositoError('CONNECTION_LOST', 'the client went away mid-request'))
    })
    socket.setTimeout(limits.idleTimeoutMs, () => this.#onIdle())
    // The idle timer restarts at every byte, so a header dribbled one byte at a time would hold a connection
    // slot for hours: the line has a deadline of its own, counted from the accept.
    const headerDeadline = setTimeout(() => this.#headerLate(), limits.headerTimeoutMs).unref()
    admission.add(this)
    const done = () => {
      clearTimeout(headerDeadline)
      admission.headerDone(this)
    }
    this.body.header.then(done, done)
  }

  /** True while a request is being served: shutdown lets these finish and closes the rest at once. */
  get busy(): boolean {
    return this.#busy
  }

  async serve(handle: RequestHandler): Promise<void> {
    try {
      this.headerLine = await this.body.header
      this.headerFields = decodeFields(this.headerLine)
      const request = parseRequest(this.headerFields)
      this.#busy = true
      this.log = this.log.child({ op: request.op, client: 'clientId' in request && request.clientId ? clientTag(request.clientId) : undefined })
      await handle(request, this)
    } catch (err) {
      this.refuse(toDepositoError(err))
    } finally {
      this.#busy = false
    }
  }

  /**
   * Runs work of the server's own before it reads the body (a resumed deposit re-hashing a prefix of many GiB):
   * the client's bytes wait in the socket meanwhile, so the silence is ours and the idle timer does not cut it.
   */
  async whileWorking<T>(work: () => Promise<T>): Promise<T> {
    this.#working++
    try {
      return await work()
    } finally {
      this.#working--
    }
  }

  /**
   * This connection is another node of the cluster (its peer header verified, or a PSK handshake): it moves to
   * the peers' connection budget. Throws BUSY when that budget is spent.
   */
  markPeer(): void {
    this.admission.markPeer(this)
  }

  /** Sends the success line; with `stream`, pipes it (through `stages`) after the line and ends the reply with it. */
  async ok(fields: Record<string, string | number | undefined>, stream?: Readable, ...stages: Transform[]): Promise<void> {
    this.#drain()
    if (!stream) {
      this.#state = 'done'
      this.socket.end(this.#sealed(encodeOk(fields)))
      this.#closeAfter(this.limits.lingerMs)
      return
    }
    this.#state = 'replying'
    this.socket.write(this.#sealed(encodeOk(fields)))
    await pipeline([stream, ...stages, this.socket])
    this.#state = 'done'
    // The last bytes may still sit in the kernel's buffers while a slow reader takes them: an idle period, not a linger.
    this.#closeAfter(this.limits.idleTimeoutMs)
  }

  /**
   * Once the answer is out, the connection is done whatever the client does: one that keeps trickling bytes
   * (each restarts the idle timer) must not hold its slot for ever.
   */
  #closeAfter(ms: number): void {
    setTimeout(() => this.socket.destroy(), ms).unref()
  }

  refuse(err: DepositoError): void {
    if (this.#state === 'done' || this.socket.destroyed) return
    const level = err.code === 'INTERNAL' ? 'error' : err.code === 'CONNECTION_LOST' ? 'debug' : 'info'
    this.log[level]({ code: err.code, err: err.code === 'INTERNAL' ? err.cause ?? err : undefined }, err.message)
    if (this.#state === 'replying') {
      // Part of a reply body is out; an error line now would read as file bytes. A cut connection is the signal.
      this.socket.destroy()
      return
    }
    this.#state = 'done'
    this.socket.end(this.#sealed(encodeError(err)))
    this.#drain()
    this.#closeAfter(this.limits.lingerMs)
  }

  #sealed(line: string): string {
    return this.peerSeal ? this.peerSeal.seal(line) : line
  }

  /** Stops feeding the request streams and reads the rest of the input into the void until the client ends. */
  #drain(): void {
    this.socket.unpipe(this.body)
    if (!this.body.destroyed) this.body.destroy()
    this.socket.resume()
  }

  #headerLate(): void {
    this.refuse(new DepositoError('TIMEOUT', `the request line did not arrive within ${this.limits.headerTimeoutMs / 1000} s`))
  }

  #onIdle(): void {
    // The whole request is in and no reply has started: the silence is ours (the final fsync and commit of a large
    // file can take a while), not the client's. The next byte we write re-arms the timer.
    if (this.#busy && this.#state === 'open' && (this.body.writableEnded || this.#working > 0)) return
    const err = new DepositoError('TIMEOUT', `no traffic for ${this.limits.idleTimeoutMs} ms`)
    if (this.#busy && !this.body.destroyed) this.body.destroy(err)
    else this.refuse(err)
    setTimeout(() => this.socket.destroy(), this.limits.lingerMs).unref()
  }
}
