import { Readable } from 'node:stream'
import type { Scrubber } from '../cluster/scrub.js'
import { DepositoError } from '../protocol/errors.js'
import { encodeFields } from '../protocol/fields.js'
import type { BlobStore } from '../store/blob-store.js'
import type { PeerRequest } from '../protocol/messages.js'
import type { Exchange } from './connection.js'
import type { ClusterContext, ServerContext } from './context.js'
import { replicate } from './deposit.js'

/**
 * Requests one node makes of another (PROTOCOL.md, Between nodes). Each is checked against the cluster secret before anything else; a node
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
      const { store } = ctx
      const held = store.hasClient(request.clientId) ? store.stat(request.clientId, request.name) : undefined
      const gone = held && (await store.deleteVersion(request.clientId, request.name, request.hash ?? held.sha256))
      return exchange.ok({ removido: gone ? 1 : 0 })
    }
    case 'holdings': {
      // A snapshot of references into the index, so the count sent first matches the lines; each line is only
      // encoded as the socket takes it.
      const files = [...ctx.store.allFiles()]
      const lines = function* () {
        for (const { owner, info } of files) yield encodeFields({ id_cliente: owner, nome_arquivo: info.name, hash_arquivo: info.sha256 })
      }
      return exchange.ok({ quantidade: files.length }, Readable.from(lines()))
    }
    case 'scrub':
      return scrub(request.bytes, exchange, ctx.store, cluster.scrubber)
  }
}

/** A mirror re-hashing its next slice for its primary: a copy that fails is dropped, never served again. */
async function scrub(budget: number, exchange: Exchange, store: BlobStore, scrubber: Scrubber): Promise<void> {
  const { checked, bad } = await scrubber.run(budget)
  let dropped = 0
  for (const { owner, info } of bad) {
    exchange.log.error({ owner, name: info.name, sha256: info.sha256 }, 'scrub found a bad copy; dropping it')
    if (await store.deleteVersion(owner, info.name, info.sha256)) dropped++
  }
  return exchange.ok({ verificados: checked, removidos: dropped })
}

function requireCluster(ctx: ServerContext): ClusterContext {
  if (!ctx.cluster) throw new DepositoError('UNAUTHORIZED', 'this node has no cluster secret and accepts no peer requests')
  return ctx.cluster
}
