import { Readable } from 'node:stream'
import { encodeFields } from '../protocol/fields.js'
import { isPeerRequest, type Request } from '../protocol/messages.js'
import { encodeFileInfo } from '../protocol/replies.js'
import type { Exchange } from './connection.js'
import type { ServerContext } from './context.js'
import { shownToClient } from './context.js'
import { isMirror, nodeFields, notPrimary } from './roles.js'
import { DepositoError } from '../protocol/errors.js'
import { deleteFile } from './delete.js'
import { deposit, unknownClient } from './deposit.js'
import { partialOffset, resumableDeposit } from './resume-deposit.js'
import { handlePeerRequest } from './peer-handlers.js'
import { logIssuedId } from './logger.js'
import { status } from './status.js'
import { retrieve } from './retrieve.js'
import { changeReplicas } from './replicas.js'

/**
 * Routes a parsed request to its verb. Every verb but hello and node needs an id this server issued. A mirror
 * (roles.ts) takes no client writes and issues no ids; it serves reads from its copies, where an owner it has
 * never seen simply has no files.
 */
export async function handleRequest(request: Request, exchange: Exchange, ctx: ServerContext): Promise<void> {
  const { store } = ctx
  if (request.op === 'node') return exchange.ok(nodeFields(ctx))
  if (request.op === 'hello') return hello(request.clientId, exchange, ctx)
  if (isPeerRequest(request)) return handlePeerRequest(request, exchange, ctx)
  if (isMirror(ctx)) {
    if (request.op === 'deposit' || request.op === 'delete' || request.op === 'replicas' || request.op === 'offset') throw notPrimary(ctx)
    if (!store.hasClient(request.clientId)) {
      if (request.op === 'list') return exchange.ok({ quantidade: 0 }, Readable.from([]))
      if (request.op === 'retrieve') throw new DepositoError('NOT_FOUND', `no file named ${JSON.stringify(request.name)}`)
    }
  } else if (request.op === 'deposit') {
    return request.upload === undefined ? deposit(request, exchange, ctx) : resumableDeposit({ ...request, upload: request.upload }, exchange, ctx)
  } else if (!store.hasClient(request.clientId)) {
    throw unknownClient(request.clientId)
  }
  switch (request.op) {
    case 'retrieve':
      return retrieve(request, exchange, ctx)
    case 'list': {
      const files = store.list(request.clientId).map((f) => shownToClient(ctx, f))
      // The count comes first so a reader knows how many lines follow without waiting for the close.
      return exchange.ok({ quantidade: files.length }, Readable.from(files.map((f) => encodeFields(encodeFileInfo(f)))))
    }
    case 'status':
      return status(exchange, ctx)
    case 'replicas':
      return changeReplicas(request, exchange, ctx)
    case 'delete':
      return deleteFile(request, exchange, ctx)
    case 'offset':
      return partialOffset(request, exchange, ctx)
  }
}

/** A new id from a primary; a mirror cannot tell which ids its primary issued, so it vouches for none. */
async function hello(clientId: string | undefined, exchange: Exchange, ctx: ServerContext): Promise<void> {
  const { no, papel, cluster } = nodeFields(ctx)
  const self = { no, papel, cluster }
  if (clientId !== undefined) {
    if (!isMirror(ctx) && !ctx.store.hasClient(clientId)) throw unknownClient(clientId)
    return exchange.ok({ id_cliente: clientId, novo: 0, ...self })
  }
  if (isMirror(ctx)) throw notPrimary(ctx)
  // Each id costs directories and fsyncs, and the store keeps every id for ever.
  const source = exchange.socket.remoteAddress ?? 'unknown'
  if (!ctx.helloLimit.take(source)) throw new DepositoError('BUSY', `too many new ids from ${source}; try again in a minute`)
  const id = await ctx.store.issueClientId()
  logIssuedId(exchange.log, id)
  return exchange.ok({ id_cliente: id, novo: 1, ...self })
}
