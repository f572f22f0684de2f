import { DepositoError } from '../protocol/errors.js'
import type { PeerRequest } from '../protocol/messages.js'
import type { Exchange } from './connection.js'
import type { ClusterContext, ServerContext } from './context.js'
import { replicate } from './deposit.js'

/**
 * Requests one node makes of another. Each is checked against the cluster secret before anything else; a node
 * started without a secret takes part in no cluster and refuses them all.
 */
export async function handlePeerRequest(request: PeerRequest, exchange: Exchange, ctx: ServerContext): Promise<void> {
  const cluster = requireCluster(ctx)
  cluster.auth.verify(exchange.headerLine, exchange.headerFields)
  switch (request.op) {
    case 'join':
      await cluster.membership.add(request.node)
      exchange.log.info({ mirror: request.node }, 'mirror joined')
      return exchange.ok({ node: request.node })
    case 'ping': {
      const { files, bytes } = ctx.store.usage()
      return exchange.ok({ arquivos: files, bytes, livre: await ctx.store.freeBytes() })
    }
    case 'replicate':
      return replicate(request, exchange, ctx)
    case 'drop': {
      const gone = ctx.store.hasClient(request.clientId) && ctx.store.stat(request.clientId, request.name)
      if (gone) await ctx.store.delete(request.clientId, request.name)
      return exchange.ok({ removido: gone ? 1 : 0 })
    }
  }
}

function requireCluster(ctx: ServerContext): ClusterContext {
  if (!ctx.cluster) throw new DepositoError('UNAUTHORIZED', 'this node has no cluster secret and accepts no peer requests')
  return ctx.cluster
}
