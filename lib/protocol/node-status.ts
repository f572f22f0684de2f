import { DepositoError } from './errors.js'
import type { Fields } from './fields.js'
import { parseCount } from './values.js'

/** One node in a `status` reply. */
export interface NodeStatus {
  /** The node's id (absent from nodes older than node ids). */
  id?: string
  address: string
  role: 'primary' | 'mirror'
  up: boolean
  files?: number
  bytes?: number
  free?: number
  /** ISO time the primary last heard from it (mirrors only). */
  lastSeen?: string
  /** Its certificate's fingerprint (the answering node's own line only). */
  fingerprint?: string
}

export function encodeNodeStatus(node: NodeStatus): Record<string, string | number | undefined> {
  return {
    no: node.id,
    endereco: node.address,
    papel: node.role === 'primary' ? 'primario' : 'espelho',
    estado: node.up ? 'up' : 'down',
    arquivos: node.files,
    bytes: node.bytes,
    livre: node.free,
    visto: node.lastSeen,
    impressao: node.fingerprint,
  }
}

export function decodeNodeStatus(fields: Fields): NodeStatus {
  if (fields.endereco === undefined) throw new DepositoError('PROTOCOL_ERROR', 'status line without endereco')
  const number = (key: string) => (fields[key] === undefined ? {} : { [key]: parseCount(key, fields[key]!) })
  const { arquivos: files, bytes, livre: free } = { ...number('arquivos'), ...number('bytes'), ...number('livre') } as Record<string, number>
  return {
    ...(fields.no === undefined ? {} : { id: fields.no }),
    address: fields.endereco,
    role: fields.papel === 'primario' ? 'primary' : 'mirror',
    up: fields.estado === 'up',
    ...(files === undefined ? {} : { files }),
    ...(bytes === undefined ? {} : { bytes }),
    ...(free === undefined ? {} : { free }),
    ...(fields.visto === undefined ? {} : { lastSeen: fields.visto }),
    ...(fields.impressao === undefined ? {} : { fingerprint: fields.impressao }),
  }
}
