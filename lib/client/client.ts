import { Writable, type Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import split2 from 'split2'
import { DepositoError, localIoError, toDepositoError } from '../protocol/errors.js'
import { decodeFields, type Fields } from '../protocol/fields.js'
import { decodeFileInfo, encodeRequest, parseClientId, parseCount, type FileInfo, type Request } from '../protocol/messages.js'
import { decodeNodeStatus, type NodeStatus } from '../protocol/node-status.js'
import { BodyDecoder } from '../streams/body-decoder.js'
import { BodyEncoder } from '../streams/body-encoder.js'
import { hashVerifier } from '../streams/hash-verifier.js'
import { formatAddress, type ServerAddress } from '../net/address.js'
import { exchange, openConnection, readReply, type ConnectOptions } from '../net/connection.js'
import { IdentityFile } from './identity.js'

/**
 * The client library behind `bin/client`: one method per verb, each one connection. Bodies stream both ways;
 * the client hashes what it sends (the hash rides in the trailer, so a file is read once) and checks the hash
 * of what it receives before it reports success.
 */
const MAX_LIST_LINE = 64 * 1024

export interface ClientOptions extends ConnectOptions {
  /** How long to wait for a deposit's reply once its body is sent (default 10 minutes). */
  commitTimeoutMs?: number
  /** The server, or a primary followed by its mirrors: each request goes to the first that answers. */
  server: ServerAddress | ServerAddress[]
  /** An id to use; otherwise the one saved for this server, otherwise a new one the server issues. */
  id?: string
  identity?: IdentityFile
}

export interface DepositOptions {
  name: string
  /** Known for a regular file; undefined for a pipe (the body is then chunked). */
  size?: number
  replicas?: number
  onBytes?: (bytes: number) => void
}

export interface DepositResult extends FileInfo {
  /** Copies that exist now: the server's own plus every mirror that confirmed. */
  copies: number
  /** Fewer mirrors confirmed than qtd_replicas asked for; the server's repair will make up the difference. */
  degraded: boolean
  /** Addresses of the mirrors holding a copy. */
  mirrors: string[]
}

export class DepositoClient {
  readonly #options: ClientOptions
  #id: string | undefined

  constructor(options: ClientOptions) {
    this.#options = options
    this.#id = options.id
  }

  /** The address ids are saved under: the first of the list, where the id was issued. */
  get server(): string {
    const { server } = this.#options
    return formatAddress(Array.isArray(server) ? server[0]! : server)
  }

  /** The client's id, asking the server for a new one (and saving it) only when none is known. */
  async id(): Promise<string> {
    if (this.#id) return this.#id
    const { identity } = this.#options
    this.#id = await identity?.get(this.server)
    if (this.#id) return this.#id
    const { fields } = await exchange(this.#options.server, { op: 'hello' }, this.#options)
    let id: string
    try {
      id = parseClientId(fields.id_cliente ?? '')
    } catch {
      throw new DepositoError('PROTOCOL_ERROR', 'hello reply without a valid id_cliente')
    }
    this.#id = identity ? await identity.claim(this.server, id) : id
    return this.#id
  }

  /** Confirms the server knows our id (the seed's reconnect). */
  async hello(): Promise<string> {
    const clientId = await this.id()
    await exchange(this.#options.server, { op: 'hello', clientId }, this.#options)
    return clientId
  }

  async deposit(source: Readable, options: DepositOptions): Promise<DepositResult> {
    const clientId = await this.id()
    const socket = await openConnection(this.#options.server, this.#options)
    const reply = readReply(socket)
    const hasher = hashVerifier({ onBytes: options.onBytes })
    const encoder = new BodyEncoder({
      chunked: options.size === undefined,
      trailer: () => ({ size: hasher.bytes, hash: hasher.digest! }),
    })
    // A refusal can come before the body is through (NO_REPLICAS, NO_SPACE...): stop sending at once.
    const refused = new AbortController()
    reply.catch(() => refused.abort())
    socket.write(
      encodeRequest({ op: 'deposit', clientId, name: options.name, replicas: options.replicas, size: options.size ?? null, hash: null }),
    )
    const firstFailure = whoFailedFirst({ source, hasher, encoder, socket })
    try {
      await pipeline(source, hasher, encoder, socket, { signal: refused.signal })
    } catch (err) {
      socket.destroy()
      const answer = await reply.then(
        () => undefined,
        (e: unknown) => toDepositoError(e, 'CONNECTION_LOST'),
      )
      // We stopped because the reply side failed first (a refusal, or the server vanished): that is the cause.
      // Otherwise the server's own reason still beats our side's symptom (a reset), and a local read error stays ours.
      // (Checked on the error, not the signal: our own failure also ends the reply and fires the signal, later.)
      const stoppedByReply = (err as Error).name === 'AbortError'
      if (answer && (stoppedByReply || answer.code !== 'CONNECTION_LOST')) throw answer
      throw firstFailure() === 'source' ? localIoError(err, 'could not read the input') : toDepositoError(err, 'IO_ERROR')
    }
    // Everything is sent; the server now fsyncs and commits, which for a large file on a slow disk can outlast
    // the idle timeout meant for a stalled peer.
    socket.setTimeout(this.#options.commitTimeoutMs ?? 10 * 60_000)
    const { fields } = await reply
    socket.destroy()
    return depositResult(fields)
  }

  /** Streams a file into `sink`; rejects with HASH_MISMATCH if the bytes are not the ones deposited. */
  async retrieve(name: string, sink: Writable, onBytes?: (bytes: number, info: FileInfo) => void): Promise<FileInfo> {
    const clientId = await this.id()
    const { fields, body, socket } = await exchange(this.#options.server, { op: 'retrieve', clientId, name }, this.#options)
    try {
      const info = decodeFileInfo(fields)
      const decoder = new BodyDecoder({ size: info.size, trailer: false })
      const verifier = hashVerifier({ expected: () => info.sha256, onBytes: onBytes && ((n) => onBytes(n, info)) })
      // A failing output (a full local disk, a closed pipe downstream) is a local problem, not a network one.
      const firstFailure = whoFailedFirst({ body, decoder, verifier, sink })
      await pipeline(body, decoder, verifier, sink).catch((err: unknown) => {
        if (firstFailure() === 'sink') throw localIoError(err, 'could not write the output')
        const e = toDepositoError(err, 'IO_ERROR')
        if (e.code !== 'BAD_BODY') throw e
        // Fewer bytes than announced: the connection was cut. More: the server broke the protocol.
        const short = decoder.result.size < info.size
        throw new DepositoError(short ? 'CONNECTION_LOST' : 'PROTOCOL_ERROR', `the server ${short ? 'stopped sending' : 'sent too much'}: ${e.message}`)
      })
      return info
    } finally {
      socket.destroy()
    }
  }

  async list(): Promise<FileInfo[]> {
    const { items } = await this.#lines({ op: 'list', clientId: await this.id() }, 'quantidade', 'files', decodeFileInfo)
    return items
  }

  /** The cluster as the server sees it: its nodes, and how many files are short of copies. */
  async status(): Promise<{ nodes: NodeStatus[]; underReplicated: number }> {
    const { fields, items } = await this.#lines({ op: 'status', clientId: await this.id() }, 'nos', 'nodes', decodeNodeStatus)
    return { nodes: items, underReplicated: replyCount(fields, 'sub_replicados') }
  }

  /** A reply that announces a count in `countField`, then sends that many lines, each parsed by `parse`. */
  async #lines<T>(request: Request, countField: string, noun: string, parse: (fields: Fields) => T): Promise<{ fields: Fields; items: T[] }> {
    const { fields, body, socket } = await exchange(this.#options.server, request, this.#options)
    try {
      const expected = replyCount(fields, countField)
      const items: T[] = []
      const collect = new Writable({
        objectMode: true,
        write(line: string, _enc, cb) {
          try {
            items.push(parse(decodeFields(line)))
            cb()
          } catch (err) {
            cb(new DepositoError('PROTOCOL_ERROR', `unreadable ${request.op} line: ${(err as Error).message}`))
          }
        },
      })
      // Lines are capped like the status line: a hostile server cannot grow one without bound.
      await pipeline(body, split2({ maxLength: MAX_LIST_LINE }), collect)
      if (items.length !== expected) {
        throw new DepositoError('CONNECTION_LOST', `the server announced ${expected} ${noun} and sent ${items.length}`)
      }
      return { fields, items }
    } finally {
      socket.destroy()
    }
  }

  /** Changes how many mirrors keep `name`; the server copies from its own verified copy or drops extras. */
  async replicas(name: string, replicas: number): Promise<DepositResult> {
    const clientId = await this.id()
    const { fields, socket } = await exchange(this.#options.server, { op: 'replicas', clientId, name, replicas }, this.#options)
    socket.destroy()
    return depositResult(fields)
  }

  async delete(name: string): Promise<FileInfo> {
    const clientId = await this.id()
    const { fields, socket } = await exchange(this.#options.server, { op: 'delete', clientId, name }, this.#options)
    socket.destroy()
    return decodeFileInfo(fields)
  }
}

/**
 * A pipeline destroys every stage with the first error, so after the fact a local file's failure and the
 * network's look alike; the stage that emitted 'error' first is the one that failed.
 */
function whoFailedFirst<K extends string>(streams: Record<K, NodeJS.EventEmitter>): () => K | undefined {
  let first: K | undefined
  for (const [key, stream] of Object.entries(streams) as [K, NodeJS.EventEmitter][]) stream.once('error', () => (first ??= key))
  return () => first
}

/** A count in a server's reply; a missing or malformed one is the server breaking the protocol. */
function replyCount(fields: Fields, key: string): number {
  try {
    return parseCount(key, fields[key] ?? '')
  } catch {
    throw new DepositoError('PROTOCOL_ERROR', `the reply's ${key} is not a count: ${JSON.stringify(fields[key] ?? null)}`)
  }
}

function depositResult(fields: Fields): DepositResult {
  return {
    ...decodeFileInfo(fields),
    copies: fields.copias === undefined ? 1 : replyCount(fields, 'copias'),
    degraded: fields.degradado === '1',
    mirrors: fields.espelhos ? fields.espelhos.split(',') : [],
  }
}
