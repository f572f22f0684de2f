import { settleReplicas } from '../cluster/replica-count.js'
import { DepositoError } from '../protocol/errors.js'
import { type ReplicasRequest } from '../protocol/messages.js'
import { encodeFileInfo } from '../protocol/replies.js'
import type { Exchange } from './connection.js'
import { liveMirrors, refuseUnreachableCount, replicaDeps, shownToClient, type ServerContext } from './context.js'

/**
 * `replicas NAME N` (the seed's "editar réplicas"): grow from the primary's verified copy or shrink by dropping
 * extras, and report the count reached (degraded while mirrors it needs are down: the repair pass completes it).
 * No byte crosses from the client.
 */
export async function changeReplicas(request: ReplicasRequest, exchange: Exchange, ctx: ServerContext): Promise<void> {
  const info = ctx.store.stat(request.clientId, request.name)
  if (!info) throw new DepositoError('NOT_FOUND', `no file named ${JSON.stringify(request.name)}`)
  refuseUnreachableCount(ctx, request.replicas)
  const settled = ctx.cluster
    ? await settleReplicas(replicaDeps(ctx, exchange), request.clientId, info, request.replicas, { insist: true })
    : ((await ctx.store.updateRecord(request.clientId, info.name, info.sha256, { replicas: request.replicas, mirrors: info.mirrors })) ?? info)
  // Copies on mirrors that are down stay on the record for a while but are not counted as held.
  const held = (settled.mirrors ?? []).filter((m) => liveMirrors(ctx).includes(m)).length
  exchange.log.info({ name: settled.name, replicas: request.replicas, mirrors: settled.mirrors }, 'replica count changed')
  await exchange.ok({ ...encodeFileInfo(shownToClient(ctx, settled)), copias: 1 + held, degradado: held < request.replicas ? 1 : 0 })
}
