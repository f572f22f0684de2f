import type { Readable, Writable } from 'node:stream'
import { DepositoError } from '../protocol/errors.js'
import type { Fields } from '../protocol/fields.js'
import { type Request } from '../protocol/messages.js'
import { parseClientId } from '../protocol/values.js'
import { decodeFileInfo, type FileInfo } from '../protocol/replies.js'
import { decodeNodeStatus, type NodeStatus } from '../protocol/node-status.js'
import { formatAddress, type ServerAddress } from '../net/address.js'
import { exchange, openConnection, type ConnectOptions } from '../net/connection.js'
import { defaultHome, savedKey, type IdentityFile } from './identity.js'
import { KnownServers, pinningTransport } from './known-servers.js'
import { Router, type FirstAnswer, type NodeAnswer, type Role } from './router.js'
import { download, readLines, replyCount, upload, type DownloadResume } from './transfer.js'

/**
 * The client library behind `bin/client`: one method per verb, each one connection after the probe that picks
 * the node (router.ts); the bytes of each transfer are moved by transfer.ts.
 */
export interface ClientOptions extends ConnectOptions {
  /** How long to wait for a deposit's reply once its body is sent (default 10 minutes). */
  commitTimeoutMs?: number
  /** The server, or nodes of one cluster in the order to try them (router.ts decides which serves what). */
  server: ServerAddress | ServerAddress[]
  /** How long a node may take to accept and answer who it is before the next one is tried (default 5 s). */
  responseTimeoutMs?: number
  /** An id to use; otherwise the one saved for this cluster, otherwise a new one the primary issues. */
  id?: string
  identity?: IdentityFile
}

export interface DepositOptions {
  name: string
  /** Known for a regular file; undefined for a pipe (the body is then chunked). */
  size?: number
  replicas?: number
  onBytes?: (bytes: number) => void
  /**
   * The same bytes again from the start (a regular file re-opened), so a NOT_PRIMARY refusal can be followed to
   * the primary; without it (a pipe, whose bytes are gone) the refusal is the answer.
   */
  reopen?: () => Readable
  /** A resumable deposit's token, and where its body starts (the source still starts at byte 0). */
  upload?: string
  offset?: number
}

export interface DepositResult extends FileInfo {
  /** Copies that exist now: the server's own plus every mirror that confirmed. */
  copies: number
  /** Fewer mirrors confirmed than qtd_replicas asked for; the server's repair will make up the difference. */
  degraded: boolean
  /** Addresses of the mirrors holding a copy. */
  mirrors: string[]
}

/** The node that answered a read; `node` is null for servers older than node ids. */
export interface ServedBy {
  address: string
  node: string | null
  role: Role
}

/** Where the last read came from; `missedPrimary` (possibly '' if unknown) when a mirror stood in for it. */
export interface ReadOrigin {
  servedBy: ServedBy
  missedPrimary?: string
}

export const DEFAULT_RESPONSE_TIMEOUT_MS = 5_000

export class DepositoClient {
  readonly #options: ClientOptions
  readonly #router: Router
  #id: string | undefined
  #lastRead: ReadOrigin | undefined

  constructor(options: ClientOptions) {
    // Every connection, probes included, goes through one transport: by default TLS with pins for any address
    // that leaves the machine, pins kept beside the ids.
    const transport = options.transport ?? pinningTransport({ known: new KnownServers(options.identity?.home ?? defaultHome()) })
    this.#options = { ...options, transport }
    this.#id = options.id
    const list = Array.isArray(options.server) ? options.server : [options.server]
    this.#router = new Router(list, options.responseTimeoutMs ?? DEFAULT_RESPONSE_TIMEOUT_MS, { transport })
  }

  /** The first address of the list: where ids were saved before clusters had ids, and still are for old servers. */
  get server(): string {
    const { server } = this.#options
    return formatAddress(Array.isArray(server) ? server[0]! : server)
  }

  /** Which node served the last retrieve, list, status or hello (undefined before any). */
  get lastRead(): ReadOrigin | undefined {
    return this.#lastRead
  }

  /** The client's id, asking the primary for a new one (and saving it) only when none is known. */
  async id(): Promise<string> {
    return this.#id ?? this.#idFor(await this.#router.first())
  }

  /** The id saved for the cluster the listed nodes belong to, if any; never asks for a new one. */
  async savedId(): Promise<string | undefined> {
    const { answer } = await this.#router.first()
    return this.#options.identity?.lookup({ cluster: answer.cluster, legacy: this.server })
  }

  async #idFor(first: FirstAnswer): Promise<string> {
    if (this.#id) return this.#id
    const { identity } = this.#options
    const where = { cluster: first.answer.cluster, legacy: this.server }
    this.#id = await identity?.lookup(where)
    if (this.#id) return this.#id
    // Only a primary issues ids: one a mirror made up would be unknown to the cluster.
    const primary = await this.#router.forWrite(first, 'new client ids')
    const fields = await this.#followOnce(primary, (target) => this.#ask(target, { op: 'hello' }))
    let id: string
    try {
      id = parseClientId(fields.id_cliente ?? '')
    } catch {
      throw new DepositoError('PROTOCOL_ERROR', 'hello reply without a valid id_cliente')
    }
    this.#id = identity ? await identity.claim(savedKey(where), id) : id
    return this.#id
  }

  /** The id, and the node a read goes to: the primary if it answers, else the mirror that did. */
  async #read(): Promise<{ clientId: string; target: ServerAddress }> {
    const first = await this.#router.first()
    const clientId = await this.#idFor(first)
    const { node, missedPrimary } = await this.#router.forRead(first)
    const servedBy = { address: node.address, node: node.node ?? null, role: node.role }
    this.#lastRead = missedPrimary === undefined ? { servedBy } : { servedBy, missedPrimary }
    return { clientId, target: node.target }
  }

  /** The id, and the primary a write goes to. */
  async #write(): Promise<{ clientId: string; primary: NodeAnswer }> {
    const first = await this.#router.first()
    const clientId = await this.#idFor(first)
    return { clientId, primary: await this.#router.forWrite(first) }
  }

  /**
   * Sends a write to the primary found by the probe. A NOT_PRIMARY refusal means its role changed since: the
   * write follows the refusal's pointer once (if `canResend`), and a second refusal is the answer.
   */
  async #followOnce<T>(primary: NodeAnswer, send: (target: ServerAddress) => Promise<T>, canResend = true): Promise<T> {
    try {
      return await send(primary.target)
    } catch (err) {
      if (!canResend || !(err instanceof DepositoError) || err.code !== 'NOT_PRIMARY') throw err
      const next = await this.#router.follow(primary.address, err.details.primary, 'writes')
      return send(next.target)
    }
  }

  /** A request without a body, answered by one line. */
  async #ask(target: ServerAddress, request: Request): Promise<Fields> {
    const { fields, socket } = await exchange(target, request, this.#options)
    socket.destroy()
    return fields
  }

  /** Confirms the server knows our id (the seed's reconnect); a mirror accepts any id, it only holds copies. */
  async hello(): Promise<string> {
    const { clientId, target } = await this.#read()
    await this.#ask(target, { op: 'hello', clientId })
    return clientId
  }

  async deposit(source: Readable, options: DepositOptions): Promise<DepositResult> {
    const { clientId, primary } = await this.#write()
    let input = source
    let sent = 0
    return this.#followOnce(
      primary,
      (target) => {
        if (sent++ > 0) {
          input.destroy()
          input = options.reopen!()
        }
        return this.#upload(target, clientId, input, options)
      },
      options.reopen !== undefined,
    )
  }

  async #upload(target: ServerAddress, clientId: string, source: Readable, options: DepositOptions): Promise<DepositResult> {
    const { upload: token, offset } = options
    const resumable = token === undefined ? {} : { upload: token, ...(offset ? { offset } : {}) }
    const request = { op: 'deposit', clientId, name: options.name, replicas: options.replicas, size: options.size ?? null, hash: null, ...resumable } as const
    const socket = await openConnection(target, this.#options)
    return depositResult(await upload(socket, request, source, { ...options, commitTimeoutMs: this.#options.commitTimeoutMs }))
  }

  /** Where the uploads of this client to this cluster are kept apart from others': the cluster (or address) and id. */
  async writeScope(): Promise<{ cluster: string; clientId: string }> {
    const first = await this.#router.first()
    return { cluster: first.answer.cluster ?? this.server, clientId: await this.#idFor(first) }
  }

  /** How many bytes of upload `token` the primary holds; undefined if it holds none (NOT_FOUND: start from 0). */
  async uploadOffset(token: string): Promise<{ offset: number; size: number; name?: string } | undefined> {
    const { clientId, primary } = await this.#write()
    try {
      const fields = await this.#followOnce(primary, (target) => this.#ask(target, { op: 'offset', clientId, upload: token }))
      return { offset: replyCount(fields, 'offset'), size: replyCount(fields, 'tamanho_arquivo'), name: fields.nome_arquivo }
    } catch (err) {
      if (err instanceof DepositoError && err.code === 'NOT_FOUND') return undefined
      throw err
    }
  }

  /** Streams a file into `sink`; rejects with HASH_MISMATCH if the bytes are not the ones deposited. */
  async retrieve(name: string, sink: Writable, onBytes?: (bytes: number, info: FileInfo) => void, resume?: DownloadResume): Promise<FileInfo> {
    const { clientId, target } = await this.#read()
    const offset = resume?.offset ? { offset: resume.offset } : {}
    const reply = await exchange(target, { op: 'retrieve', clientId, name, ...offset }, this.#options)
    return download(reply, sink, onBytes, resume)
  }

  async list(): Promise<FileInfo[]> {
    const { clientId, target } = await this.#read()
    const { items } = await readLines(await exchange(target, { op: 'list', clientId }, this.#options), 'list', 'quantidade', 'files', decodeFileInfo)
    return items
  }

  /** The cluster as the server sees it: its nodes, and how many files are short of copies. */
  async status(): Promise<{ nodes: NodeStatus[]; underReplicated: number }> {
    const { clientId, target } = await this.#read()
    const { fields, items } = await readLines(await exchange(target, { op: 'status', clientId }, this.#options), 'status', 'nos', 'nodes', decodeNodeStatus)
    return { nodes: items, underReplicated: replyCount(fields, 'sub_replicados') }
  }

  /** Changes how many mirrors keep `name`; the server copies from its own verified copy or drops extras. */
  async replicas(name: string, replicas: number): Promise<DepositResult> {
    const { clientId, primary } = await this.#write()
    return depositResult(await this.#followOnce(primary, (target) => this.#ask(target, { op: 'replicas', clientId, name, replicas })))
  }

  async delete(name: string): Promise<FileInfo> {
    const { clientId, primary } = await this.#write()
    return decodeFileInfo(await this.#followOnce(primary, (target) => this.#ask(target, { op: 'delete', clientId, name })))
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
