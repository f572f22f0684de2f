import type { Socket } from 'node:net'
import type { Test } from 'tap'
import { listen } from './fake-server.js'

/**
 * A scripted deposito node for the client's routing: it answers the probe (`op:node`) with `node` — or, with
 * `node: null`, accepts connections and never says a word, like a process stopped with SIGSTOP — and hands
 * every other request's header line to `reply`. Every header it was sent is kept, in order, in `headers`.
 */
export interface FakeNode {
  port: number
  address: string
  headers: string[]
  /** Server-side sockets, in the order the client connected. */
  sockets: Socket[]
}

export interface FakeNodeScript {
  /** The probe's reply fields after `status:ok|`, e.g. `no:…|papel:espelho|primario:H:P`; null: silent. */
  node: string | null
  /** Answers any other request (default: INTERNAL, so a request that should not come here fails loudly). */
  reply?: (header: string, socket: Socket) => void
}

export const NODE_A = '1a1a1a1a-1111-4111-8111-111111111111'
export const NODE_B = '2b2b2b2b-2222-4222-8222-222222222222'
export const NODE_C = '3c3c3c3c-3333-4333-8333-333333333333'

export async function fakeNode(t: Test, script: FakeNodeScript): Promise<FakeNode> {
  const headers: string[] = []
  const { port, sockets } = await listen(t, (s) => {
    if (script.node === null) return void s.resume()
    let pending = ''
    const onData = (d: Buffer) => {
      pending += d.toString('latin1')
      const nl = pending.indexOf('\n')
      if (nl === -1) return
      s.off('data', onData)
      const header = pending.slice(0, nl)
      headers.push(header)
      if (header.startsWith('op:node|')) s.end(`status:ok|${script.node}\n`)
      else (script.reply ?? refuse)(header, s)
    }
    s.on('data', onData)
  })
  return { port, address: `127.0.0.1:${port}`, headers, sockets }
}

function refuse(_header: string, s: Socket): void {
  s.end('status:error|code:INTERNAL|message:this fake node takes no such request\n')
}

/** The ops of the headers a node was sent, e.g. ['node', 'delete']. */
export function ops(node: FakeNode): string[] {
  return node.headers.map((h) => /^op:([a-z]+)/.exec(h)?.[1] ?? '?')
}

/** Resolves once the client has hung up on `socket` (its FIN or reset arrived): the wait was abandoned. */
export function abandoned(socket: Socket): Promise<void> {
  if (socket.readableEnded || socket.destroyed) return Promise.resolve()
  return new Promise((resolve) => {
    socket.once('end', resolve)
    socket.once('close', resolve)
  })
}

/** Replies `reply` once the request is complete (the client half-closed), reading and discarding any body. */
export function afterRequest(reply: string): (header: string, s: Socket) => void {
  return (_header, s) => {
    s.on('end', () => s.end(reply))
    s.resume()
  }
}

export const FILE_FIELDS = `nome_arquivo:f|tamanho_arquivo:1|hash_arquivo:${'a'.repeat(64)}|qtd_replicas:0|data:2024-01-01T00:00:00.000Z`
