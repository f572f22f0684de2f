import { DepositoError } from './errors.js'
import { encodeFields, type Fields } from './fields.js'
import { LATER, PROTOCOL_VERSION, parseClientId, parseCount, parseHash, parseName, parseNodeId, parseUploadToken, required } from './values.js'

/**
 * Requests as typed values (replies: replies.ts; the values they carry: values.ts). The wire keeps the seed's field names (`id_cliente`, `qtd_replicas`,
 * `tamanho_arquivo`, `hash_arquivo`, `nome_arquivo`); `op` names the verb. Fields a server does not know are
 * ignored, which is how later versions add things (a resume `offset`, peer authentication) without breaking
 * older peers. PROTOCOL.md is the normative description.
 */
/** Who answers here: node id, role, cluster (the primary's node id); never needs or mints a client id. */
export interface NodeRequest {
  op: 'node'
}
export interface HelloRequest {
  op: 'hello'
  clientId?: string
}
export interface DepositRequest {
  op: 'deposit'
  clientId: string
  name: string
  /** Undefined: the server's default applies. */
  replicas?: number
  /** Null: unknown up front, the body is chunked and the trailer carries it. */
  size: number | null
  /** Null: the trailer carries it. */
  hash: string | null
  /** A resumable deposit's token (made by the client; the partial upload is kept under it if the body is cut). */
  upload?: string
  /** Where the body starts within the file (resumable deposits only; 0 when absent). */
  offset?: number
}
export interface RetrieveRequest {
  op: 'retrieve'
  clientId: string
  name: string
  /** Send the file from this byte on (a retrieval resuming); 0 when absent. */
  offset?: number
}
/** How many bytes of a resumable deposit's partial upload the primary holds. */
export interface OffsetRequest {
  op: 'offset'
  clientId: string
  upload: string
}
export interface ListRequest {
  op: 'list'
  clientId: string
}
/** Changes how many mirrors keep a copy of a stored file (grows from the primary's copy, or drops extras). */
export interface ReplicasRequest {
  op: 'replicas'
  clientId: string
  name: string
  replicas: number
}
/** The cluster as this node sees it: itself and its mirrors, and how many files lack copies. */
export interface StatusRequest {
  op: 'status'
  clientId: string
}
export interface DeleteRequest {
  op: 'delete'
  clientId: string
  name: string
}
/** Peer requests, signed with the cluster secret (lib/cluster/peer-auth.ts). */
export interface JoinRequest {
  op: 'join'
  /** The address the joining mirror serves on, as the primary should dial it. */
  node: string
  /** The joining node's id (its data dir's, for ever); absent from nodes older than node ids. */
  nodeId?: string
}
/** A primary's heartbeat; it names who it expects to answer and who it is, so neither can be mistaken. */
export interface PingRequest {
  op: 'ping'
  /** The node id the primary expects at this address (absent: the join check, any node may answer). */
  nodeId?: string
  /** The primary's node id. */
  primaryId?: string
  /** The address the primary can be reached at (a mirror redirects writes there). */
  primaryAddress?: string
}
/** An operator removing a dead mirror from the cluster for good (by node id, or by its last known address). */
export interface LeaveRequest {
  op: 'leave'
  node: string
}
/** A primary pushing its copy of a file to a mirror: a deposit's framing, on the owner's behalf. */
export interface ReplicateRequest extends Omit<DepositRequest, 'op'> {
  op: 'replicate'
}
export interface DropRequest {
  op: 'drop'
  clientId: string
  name: string
  /** Only this version: a newer one deposited since stays. Without it, whatever the name holds goes. */
  hash?: string
}
/** The primary asking a mirror what it holds (owner, name, sha256 of each copy), to find copies gone missing. */
export interface HoldingsRequest {
  op: 'holdings'
}
/** The primary asking a mirror to re-hash its next `bytes` of copies and drop any that fail. */
export interface ScrubRequest {
  op: 'scrub'
  bytes: number
}
export type PeerRequest = JoinRequest | PingRequest | ReplicateRequest | DropRequest | HoldingsRequest | ScrubRequest | LeaveRequest
export type Request =
  | NodeRequest
  | HelloRequest
  | DepositRequest
  | RetrieveRequest
  | ListRequest
  | StatusRequest
  | DeleteRequest
  | ReplicasRequest
  | OffsetRequest
  | PeerRequest

const PEER_OPS = new Set<string>(['join', 'ping', 'replicate', 'drop', 'holdings', 'scrub', 'leave'])

export function isPeerRequest(request: Request): request is PeerRequest {
  return PEER_OPS.has(request.op)
}
export type Op = Request['op']

/** `upload` and `offset` of a resumable deposit: only with a known size (a pipe cannot be resumed). */
function resumeFields(fields: Fields, chunked: boolean): { upload?: string; offset?: number } {
  if (fields.upload === undefined) {
    if (fields.offset !== undefined) throw new DepositoError('BAD_HEADER', 'offset needs an upload token')
    return {}
  }
  if (chunked) throw new DepositoError('BAD_HEADER', 'a deposit of unknown size (tamanho_arquivo:*) cannot be resumable')
  const upload = parseUploadToken(fields.upload)
  return fields.offset === undefined ? { upload } : { upload, offset: parseCount('offset', fields.offset) }
}

export function parseRequest(fields: Fields): Request {
  const op = required(fields, 'op')
  if (op === 'hello') {
    return fields.id_cliente === undefined ? { op } : { op, clientId: parseClientId(fields.id_cliente) }
  }
  if (op === 'node' || op === 'holdings') return { op }
  if (op === 'join') {
    const node = required(fields, 'node')
    return fields.no === undefined ? { op, node } : { op, node, nodeId: parseNodeId('no', fields.no) }
  }
  if (op === 'ping') {
    return {
      op,
      ...(fields.no === undefined ? {} : { nodeId: parseNodeId('no', fields.no) }),
      ...(fields.primario === undefined ? {} : { primaryId: parseNodeId('primario', fields.primario) }),
      ...(fields.endereco === undefined ? {} : { primaryAddress: fields.endereco }),
    }
  }
  if (op === 'leave') return { op, node: required(fields, 'no') }
  if (op === 'scrub') return { op, bytes: parseCount('bytes', required(fields, 'bytes')) }
  const clientId = parseClientId(required(fields, 'id_cliente'))
  switch (op) {
    case 'deposit':
    case 'replicate': {
      const size = required(fields, 'tamanho_arquivo')
      const hash = required(fields, 'hash_arquivo')
      // A chunked body always ends in a trailer with the hash; a second, header hash could only contradict it.
      if (size === LATER && hash !== LATER) throw new DepositoError('BAD_HEADER', 'tamanho_arquivo:* requires hash_arquivo:*')
      return {
        op,
        clientId,
        name: parseName(required(fields, 'nome_arquivo')),
        replicas: fields.qtd_replicas === undefined ? undefined : parseCount('qtd_replicas', fields.qtd_replicas),
        size: size === LATER ? null : parseCount('tamanho_arquivo', size),
        hash: hash === LATER ? null : parseHash('hash_arquivo', hash),
        ...resumeFields(fields, size === LATER),
      }
    }
    case 'retrieve': {
      const name = parseName(required(fields, 'nome_arquivo'))
      return fields.offset === undefined ? { op, clientId, name } : { op, clientId, name, offset: parseCount('offset', fields.offset) }
    }
    case 'delete':
      return { op, clientId, name: parseName(required(fields, 'nome_arquivo')) }
    case 'offset':
      return { op, clientId, upload: parseUploadToken(required(fields, 'upload')) }
    case 'drop': {
      const name = parseName(required(fields, 'nome_arquivo'))
      return fields.hash_arquivo === undefined ? { op, clientId, name } : { op, clientId, name, hash: parseHash('hash_arquivo', fields.hash_arquivo) }
    }
    case 'list':
    case 'status':
      return { op, clientId }
    case 'replicas':
      return {
        op,
        clientId,
        name: parseName(required(fields, 'nome_arquivo')),
        replicas: parseCount('qtd_replicas', required(fields, 'qtd_replicas')),
      }
    default:
      throw new DepositoError('BAD_HEADER', `unknown op ${JSON.stringify(op.slice(0, 40))}`)
  }
}

export function encodeRequest(request: Request): string {
  return encodeFields(requestFields(request))
}

/** A request as wire fields, in wire order; peers sign these (PeerAuth.sign) instead of encoding them bare. */
export function requestFields(request: Request): Record<string, string | number | undefined> {
  const common = { op: request.op, v: PROTOCOL_VERSION, id_cliente: 'clientId' in request ? request.clientId : undefined }
  switch (request.op) {
    case 'node':
    case 'hello':
    case 'list':
    case 'status':
    case 'holdings':
      return common
    case 'scrub':
      return { ...common, bytes: request.bytes }
    case 'join':
      return { ...common, node: request.node, no: request.nodeId }
    case 'ping':
      return { ...common, no: request.nodeId, primario: request.primaryId, endereco: request.primaryAddress }
    case 'leave':
      return { ...common, no: request.node }
    case 'retrieve':
      return { ...common, nome_arquivo: request.name, offset: request.offset }
    case 'delete':
      return { ...common, nome_arquivo: request.name }
    case 'offset':
      return { ...common, upload: request.upload }
    case 'drop':
      return { ...common, nome_arquivo: request.name, hash_arquivo: request.hash }
    case 'replicas':
      return { ...common, nome_arquivo: request.name, qtd_replicas: request.replicas }
    case 'deposit':
    case 'replicate':
      return {
        ...common,
        qtd_replicas: request.replicas,
        tamanho_arquivo: request.size ?? LATER,
        hash_arquivo: request.hash ?? LATER,
        nome_arquivo: request.name,
        upload: request.op === 'deposit' ? request.upload : undefined,
        offset: request.op === 'deposit' ? request.offset : undefined,
      }
  }
}
