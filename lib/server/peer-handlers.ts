import { Readable } from 'node:stream'
import { verifyJoiner } from '../cluster/join.js'
import { removeMirror } from '../cluster/leave.js'
import { DepositoError } from '../protocol/errors.js'
import { encodeFields } from '../protocol/fields.js'
import type { PeerRequest, PingRequest } from '../protocol/messages.js'
import type { Exchange } from './connection.js'
import { replicaDeps, type ClusterContext, type ServerContext } from './context.js'
import { isMirror, notPrimary } from './roles.js'
import { replicate } from './replicate.js'
import { clientTag } from '../protocol/client-tag.js'

/**
 * Requests one node makes of another (PROTOCOL.md, Between nodes). Each is checked against the cluster secret before
 * anything else; a node started without a secret takes part in no cluster and refuses them all. Once a request
 * passes, its reply (an error too) is sealed to its nonce, and so must its trailer be (receive.ts).
 */
export async function handlePeerRequest(request: PeerRequest, exchange: Exchange, ctx: ServerContext): Promise<void> {
  const cluster = requireCluster(ctx)
  exchange.peerSeal = cluster.auth.bind(cluster.auth.verify(exchange.headerLine, exchange.headerFields))
  // After the seal is set, so a BUSY for a full peer budget is itself signed.
  exchange.markPeer()
  switch (request.op) {
    case 'join': {
      if (isMirror(ctx)) throw notPrimary(ctx)
      const id = await verifyJoiner(request, ctx.identity, cluster.membership, cluster.pinger)
      await cluster.membership.add(id, request.node)
      exchange.log.info({ node: id, mirror: request.node }, 'mirror joined')
      return exchange.ok({ node: request.node, no: ctx.identity.id })
    }
    case 'ping':
      return ping(request, exchange, ctx)
    case 'leave': {
      if (isMirror(ctx)) throw notPrimary(ctx)
      const { id, copied } = await removeMirror(replicaDeps(ctx, exchange), request.node)
      return exchange.ok({ no: id, arquivos: copied })
    }
    case 'replicate':
      refuseUnlessMirror(exchange, ctx)
      return replicate(request, exchange, ctx)
    case 'drop': {
      refuseUnlessMirror(exchange, ctx)
      const { store } = ctx
      const held = store.hasClient(request.clientId) ? store.stat(request.clientId, request.name) : undefined
      const gone = held && (await store.deleteVersion(request.clientId, request.name, request.hash ?? held.sha256))
      return exchange.ok({ removido: gone ? 1 : 0 })
    }
    case 'holdings': {
      refuseUnlessMirror(exchange, ctx)
      // A snapshot of references into the index, so the count sent first matches the lines; each line is only
      // encoded as the socket takes it.
      const files = [...ctx.store.allFiles()]
      const lines = function* () {
        for (const { owner, info } of files) yield encodeFields({ id_cliente: owner, nome_arquivo: info.name, hash_arquivo: info.sha256 })
      }
      return exchange.ok({ quantidade: files.length }, Readable.from(lines()))
    }
    case 'scrub':
      refuseUnlessMirror(exchange, ctx)
      return scrub(request.bytes, exchange, ctx, cluster)
  }
}

/**
 * A mirror re-hashing its next slice for its primary: a copy that fails, or cannot be read, is dropped and never
 * served again (the primary's reconcile then takes it off the record and copies the file anew). One slice at a
 * time (a second request gets BUSY at once: the primary may have given up waiting on the first and asked
 * again); the slice ends early when the node stops, and after half the peer timeout, so the primary, which waits
 * that long, gets its answer.
 */
async function scrub(budget: number, exchange: Exchange, ctx: ServerContext, cluster: ClusterContext): Promise<void> {
  const { checked, bad } = await cluster.scrubber.run(budget, { stopped: ctx.stopped, maxMs: cluster.replicaAckMs / 2 })
  let dropped = 0
  for (const { owner, info, unreadable } of bad) {
    exchange.log.error({ owner: clientTag(owner), name: info.name, sha256: info.sha256, unreadable }, 'scrub found a bad copy; dropping it')
    try {
      if (await ctx.store.deleteVersion(owner, info.name, info.sha256)) dropped++
    } catch (err) {
      // The record may be gone with the blob left behind (a directory rm cannot take): not served any more, so
      // dropped as far as the primary is concerned.
      exchange.log.error({ owner: clientTag(owner), name: info.name, err: (err as Error).message }, 'could not remove all of a bad copy')
      if (ctx.store.stat(owner, info.name)?.sha256 !== info.sha256) dropped++
    }
  }
  return exchange.ok({ verificados: checked, removidos: dropped })
}

/**
 * A heartbeat. Any node answers with its id, so the primary can tell who answers at an address. A mirror refuses
 * a primary other than its own, which cannot adopt it that way, and keeps the address its primary gives (where
 * it sends writes and rejoins).
 */
async function ping(request: PingRequest, exchange: Exchange, ctx: ServerContext): Promise<void> {
  const { identity } = ctx
  const primary = identity.primary
  if (isMirror(ctx) && request.primaryId !== undefined && primary?.id !== undefined) {
    if (request.primaryId !== primary.id) {
      throw new DepositoError('USAGE', `this node is a mirror of node ${primary.id}, not of node ${request.primaryId}`)
    }
    if (request.primaryAddress !== undefined) await identity.updatePrimaryAddress(request.primaryAddress)
  }
  const { files, bytes } = ctx.store.usage()
  return exchange.ok({ no: identity.id, arquivos: files, bytes, livre: await ctx.store.freeBytes() })
}

function requireCluster(ctx: ServerContext): ClusterContext {
  if (!ctx.cluster) throw new DepositoError('UNAUTHORIZED', 'this node has no cluster secret and accepts no peer requests')
  return ctx.cluster
}

/**
 * The ops that change or read a node's copies come from its primary, addressed to this node by id (`para`, under
 * the MAC). A primary serves none of them: a `drop` or `replicate` recorded on its way to a mirror and replayed to
 * the primary would delete or revert an acknowledged file. A sibling mirror refuses it too, by `para`.
 */
function refuseUnlessMirror(exchange: Exchange, ctx: ServerContext): void {
  if (!isMirror(ctx)) throw new DepositoError('UNAUTHORIZED', 'this node is a primary: it takes copies from no one')
  if (exchange.headerFields.para !== ctx.identity.id) throw new DepositoError('UNAUTHORIZED', 'peer request addressed to another node')
}
