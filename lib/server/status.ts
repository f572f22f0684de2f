import { Readable } from 'node:stream'
import { formatAddress } from '../net/address.js'
import { encodeFields } from '../protocol/fields.js'
import { encodeNodeStatus, type NodeStatus } from '../protocol/node-status.js'
import type { Exchange } from './connection.js'
import { liveMirrors, type ServerContext } from './context.js'
import { isMirror, nodeFields } from './roles.js'

/**
 * `status`: this node and its mirrors as the last heartbeats saw them, and how many files have fewer live copies
 * than their qtd_replicas asked for (a mirror that holds a copy but is down does not count). A mirror lists
 * itself only and counts nothing as short: copies are its primary's to count.
 */
export async function status(exchange: Exchange, ctx: ServerContext): Promise<void> {
  const { store, identity } = ctx
  const self = formatAddress({ host: exchange.socket.localAddress ?? '?', port: exchange.socket.localPort ?? 0 })
  const role = isMirror(ctx) ? 'mirror' : 'primary'
  const nodes: NodeStatus[] = [{ id: identity.id, address: self, role, up: true, ...store.usage(), free: await store.freeBytes(), fingerprint: ctx.fingerprint }]
  for (const m of ctx.cluster?.membership.all() ?? []) {
    nodes.push({ id: m.id, address: m.address, role: 'mirror', up: m.up, files: m.files, bytes: m.bytes, free: m.free, lastSeen: m.lastSeen })
  }
  const live = new Set(liveMirrors(ctx))
  let under = 0
  if (!isMirror(ctx)) {
    for (const { info } of store.allFiles()) {
      if ((info.mirrors ?? []).filter((m) => live.has(m)).length < info.replicas) under++
    }
  }
  const lines = nodes.map((n) => encodeFields(encodeNodeStatus(n)))
  await exchange.ok({ ...nodeFields(ctx), nos: nodes.length, sub_replicados: under }, Readable.from(lines))
}
