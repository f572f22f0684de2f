import { Readable } from 'node:stream'
import { formatAddress } from '../net/address.js'
import { encodeFields } from '../protocol/fields.js'
import { encodeNodeStatus, type NodeStatus } from '../protocol/node-status.js'
import type { Exchange } from './connection.js'
import { liveMirrors, type ServerContext } from './context.js'

/**
 * `status`: this node and its mirrors as the last heartbeats saw them, and how many files have fewer live copies
 * than their qtd_replicas asked for (a mirror that holds a copy but is down does not count).
 */
export async function status(exchange: Exchange, ctx: ServerContext): Promise<void> {
  const { store } = ctx
  const self = formatAddress({ host: exchange.socket.localAddress ?? '?', port: exchange.socket.localPort ?? 0 })
  const nodes: NodeStatus[] = [{ address: self, role: 'primary', up: true, ...store.usage(), free: await store.freeBytes() }]
  for (const m of ctx.cluster?.membership.all() ?? []) {
    nodes.push({ address: m.address, role: 'mirror', up: m.up, files: m.files, bytes: m.bytes, free: m.free, lastSeen: m.lastSeen })
  }
  const live = new Set(liveMirrors(ctx))
  let under = 0
  for (const { info } of store.allFiles()) {
    if ((info.mirrors ?? []).filter((m) => live.has(m)).length < info.replicas) under++
  }
  const lines = nodes.map((n) => encodeFields(encodeNodeStatus(n)))
  await exchange.ok({ nos: nodes.length, sub_replicados: under }, Readable.from(lines))
}
