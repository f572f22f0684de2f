import { createHash } from 'node:crypto'
import type { Socket } from 'node:net'
import type { Test } from 'tap'
import { decodeFields } from '../../lib/protocol/fields.js'
import { listen } from './fake-server.js'
import { NODE_A } from './fake-node.js'

/**
 * A scripted primary that implements the design's resumable transfers minimally, in memory: partial uploads kept
 * per token (every byte received, kept when the body is cut), `op:offset`, deposits from an offset checked
 * against the whole file's hash, and retrievals from an offset. `legacy` plays today's server: `op:offset` is
 * NOT_FOUND, `upload` is ignored and a retrieve's offset too (the whole file comes, with no `offset` field).
 * Every header line is kept in `headers`; `onHeader` sees each one as it arrives (before the body).
 */
export interface ResumableNode {
  port: number
  address: string
  headers: string[]
  partials: Map<string, Buffer>
  /** Each partial's record: the whole file's size and name. */
  records: Map<string, { size: number; name: string }>
  files: Map<string, Buffer>
  /** Bytes of deposit bodies received, over all connections. */
  received: number
  onHeader?: (header: string) => void
  /** Answers this op (instead of the script) while set: e.g. BUSY for a deposit. */
  refuse?: (header: string) => string | undefined
}

export const CLUSTER = NODE_A
const when = '2024-01-01T00:00:00.000Z'

export async function resumableNode(t: Test, { legacy = false } = {}): Promise<ResumableNode> {
  const node: ResumableNode = { port: 0, address: '', headers: [], partials: new Map(), records: new Map(), files: new Map(), received: 0 }
  const { port } = await listen(t, (s) => {
    let pending = Buffer.alloc(0)
    const onData = (d: Buffer) => {
      pending = Buffer.concat([pending, d])
      const nl = pending.indexOf(10)
      if (nl === -1) return
      s.off('data', onData)
      const header = pending.subarray(0, nl).toString('latin1')
      node.headers.push(header)
      node.onHeader?.(header)
      const refusal = node.refuse?.(header)
      if (refusal) return void s.end(refusal)
      answer(node, legacy, header, s, pending.subarray(nl + 1))
    }
    s.on('data', onData)
  })
  node.port = port
  node.address = `127.0.0.1:${port}`
  return node
}

function fileFields(name: string, bytes: Buffer): string {
  const hash = createHash('sha256').update(bytes).digest('hex')
  return `nome_arquivo:${name}|tamanho_arquivo:${bytes.length}|hash_arquivo:${hash}|qtd_replicas:0|data:${when}`
}

function answer(node: ResumableNode, legacy: boolean, header: string, s: Socket, rest: Buffer): void {
  const f = decodeFields(header)
  if (f.op === 'node') return void s.end(`status:ok|no:${CLUSTER}|papel:primario|cluster:${CLUSTER}\n`)
  if (f.op === 'offset') {
    const held = legacy ? undefined : node.partials.get(f.upload!)
    if (!held) return void s.end('status:error|code:NOT_FOUND|message:no such upload\n')
    const record = node.records.get(f.upload!)!
    return void s.end(`status:ok|offset:${held.length}|tamanho_arquivo:${record.size}|nome_arquivo:${record.name}\n`)
  }
  if (f.op === 'retrieve') {
    const bytes = node.files.get(f.nome_arquivo!)
    if (!bytes) return void s.end('status:error|code:NOT_FOUND|message:no such file\n')
    const from = legacy ? 0 : Number(f.offset ?? 0)
    if (from > bytes.length) return void s.end('status:error|code:BAD_HEADER|message:offset past the end\n')
    s.on('error', () => {})
    return void s.end(Buffer.concat([Buffer.from(`status:ok|${fileFields(f.nome_arquivo!, bytes)}${from > 0 ? `|offset:${from}` : ''}\n`), bytes.subarray(from)]))
  }
  if (f.op === 'deposit') return deposit(node, legacy, f, s, rest)
  if (f.op === 'list') {
    const lines = [...node.files].map(([name, bytes]) => `${fileFields(name, bytes)}\n`)
    return void s.end(`status:ok|quantidade:${lines.length}\n${lines.join('')}`)
  }
  s.end('status:error|code:INTERNAL|message:not scripted\n')
}

function deposit(node: ResumableNode, legacy: boolean, f: Record<string, string>, s: Socket, rest: Buffer): void {
  const size = Number(f.tamanho_arquivo)
  const token = legacy ? undefined : f.upload
  const offset = token ? Number(f.offset ?? 0) : 0
  let held = (token && node.partials.get(token)) || Buffer.alloc(0)
  if (offset > held.length) return void s.end('status:error|code:BAD_HEADER|message:the partial holds fewer bytes\n')
  held = held.subarray(0, offset)
  if (token) node.records.set(token, { size, name: f.nome_arquivo! })
  let tail = Buffer.alloc(0)
  const take = (d: Buffer) => {
    const want = size - held.length
    const body = d.subarray(0, Math.max(0, want))
    held = Buffer.concat([held, body])
    node.received += body.length
    if (token) node.partials.set(token, held)
    tail = Buffer.concat([tail, d.subarray(body.length)])
    const nl = tail.indexOf(10)
    if (held.length < size || nl === -1) return
    s.off('data', take)
    const trailer = decodeFields(tail.subarray(0, nl).toString('latin1'))
    const hash = createHash('sha256').update(held).digest('hex')
    if (token) node.partials.delete(token)
    if (trailer.hash_arquivo !== hash) return void s.end('status:error|code:HASH_MISMATCH|message:the bytes do not hash to the trailer\'s\n')
    node.files.set(f.nome_arquivo!, held)
    s.end(`status:ok|${fileFields(f.nome_arquivo!, held)}|copias:1\n`)
  }
  s.on('data', take)
  take(rest)
}
