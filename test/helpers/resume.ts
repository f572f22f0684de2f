import { createHash, randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { stat } from 'node:fs/promises'
import { connect } from 'node:net'
import { join } from 'node:path'
import { rawRequest, replyFields } from './server.js'

/**
 * Resumable deposits spoken raw, as `nc` would (the client library's resume logic is tested on its own): a
 * deposit cut after some bytes, the `offset` op, and the rest sent from an offset.
 */
export const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')

export async function newId(port: number): Promise<string> {
  return replyFields((await rawRequest(port, ['op:hello\n'])).line).id_cliente!
}

export function newToken(): string {
  return randomUUID()
}

export interface Resumable {
  id: string
  token: string
  name: string
  file: Buffer
  replicas?: number
}

export function depositLine({ id, token, name, file, replicas = 0 }: Resumable, offset?: number): string {
  const parts = [`op:deposit`, `id_cliente:${id}`, `qtd_replicas:${replicas}`, `tamanho_arquivo:${file.length}`, `hash_arquivo:${sha(file)}`]
  parts.push(`nome_arquivo:${name}`, `upload:${token}`)
  if (offset !== undefined) parts.push(`offset:${offset}`)
  return parts.join('|') + '\n'
}

/** Where the primary keeps the partial (DATA/partials/<owner>/<token>). */
export function partialPath(dataDir: string, { id, token }: { id: string; token: string }): string {
  return join(dataDir, 'partials', id, token)
}

async function sizeOf(path: string): Promise<number> {
  return stat(path).then(
    (s) => s.size,
    () => 0,
  )
}

/**
 * Sends the header and the first `k` bytes, waits (bounded) until the server has written some of them to the
 * partial, then drops the connection without a half-close: a cut.
 */
export async function cutDeposit(port: number, dataDir: string, upload: Resumable, k: number, offset?: number): Promise<void> {
  // Hashed before connecting: a big file's hash would block a server sharing this process past a short idle timeout.
  const line = depositLine(upload, offset)
  const socket = connect({ host: '127.0.0.1', port })
  socket.on('error', () => {})
  await once(socket, 'connect')
  const from = offset ?? 0
  socket.write(line)
  socket.write(upload.file.subarray(from, k))
  const path = partialPath(dataDir, upload)
  for (let i = 0; i < 1000 && (await sizeOf(path)) <= from; i++) await new Promise((resolve) => setTimeout(resolve, 5))
  socket.destroy()
}

/**
 * `op:offset`, asked until the server has noticed the cut (BUSY while the cut connection still holds the token):
 * at most 500 tries, 10 ms apart.
 */
export async function offsetOf(port: number, id: string, token: string): Promise<Record<string, string>> {
  for (let i = 0; ; i++) {
    const reply = replyFields((await rawRequest(port, [`op:offset|id_cliente:${id}|upload:${token}\n`])).line)
    if (reply.code !== 'BUSY' || i >= 500) return reply
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

/** Sends bytes `offset`.. of the file in one connection and returns the reply's fields. */
export async function depositFrom(port: number, upload: Resumable, offset?: number): Promise<Record<string, string>> {
  return replyFields((await rawRequest(port, [depositLine(upload, offset), upload.file.subarray(offset ?? 0)])).line)
}
