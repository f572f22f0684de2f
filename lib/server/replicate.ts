import { type ReplicateRequest } from '../protocol/messages.js'
import { encodeFileInfo } from '../protocol/replies.js'
import type { Exchange } from './connection.js'
import type { ServerContext } from './context.js'
import { checkSpace, receiveFile } from './receive.js'

/**
 * A mirror's side of a replica (a signed peer request): the owner's id is the primary's word, the bytes are
 * checked against the hash the primary sends, and the copy is committed with no fan-out and no bookkeeping of
 * other copies — that is the primary's.
 */
export async function replicate(request: ReplicateRequest, exchange: Exchange, ctx: ServerContext): Promise<void> {
  await ctx.store.adoptClient(request.clientId)
  await checkSpace(request, ctx)
  const { info } = await receiveFile(request, exchange, ctx, () => [], ({ upload, size, sha256 }) =>
    upload.commit(request.clientId, request.name, { size, sha256, replicas: request.replicas ?? 0 }),
  )
  exchange.log.info({ name: info.name, size: info.size, sha256: info.sha256 }, 'replica stored')
  await exchange.ok(encodeFileInfo(info))
}
