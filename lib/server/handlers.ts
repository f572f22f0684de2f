import { Readable } from 'node:stream'
import { encodeFields } from '../protocol/fields.js'
import { encodeFileInfo, isPeerRequest, type Request } from '../protocol/messages.js'
import type { Exchange } from './connection.js'
import type { ServerContext } from './context.js'
import { deleteFile } from './delete.js'
import { deposit, unknownClient } from './deposit.js'
import { handlePeerRequest } from './peer-handlers.js'
import { status } from './status.js'
import { retrieve } from './retrieve.js'
import { changeReplicas } from './replicas.js'

/** Routes a parsed request to its verb. Every verb but hello needs an id this server issued. */
export async function handleRequest(request: Request, exchange: Exchange, ctx: ServerContext): Promise<void> {
  const { store } = ctx
  // Placeholder until node identity lands (design-issue9.md): every node answers as a primary.
  if (request.op === 'node') return exchange.ok({ papel: 'primario' })
  if (request.op === 'hello') {
    if (request.clientId !== undefined) {
      if (!store.hasClient(request.clientId)) throw unknownClient(request.clientId)
      return exchange.ok({ id_cliente: request.clientId, novo: 0 })
    }
    const id = await store.issueClientId()
    exchange.log.info({ client: id }, 'issued a new client id')
    return exchange.ok({ id_cliente: id, novo: 1 })
  }
  if (isPeerRequest(request)) return handlePeerRequest(request, exchange, ctx)
  if (request.op === 'deposit') return deposit(request, exchange, ctx)
  if (!store.hasClient(request.clientId)) throw unknownClient(request.clientId)
  switch (request.op) {
    case 'retrieve':
      return retrieve(request, exchange, ctx)
    case 'list': {
      const files = store.list(request.clientId)
      // The count comes first so a reader knows how many lines follow without waiting for the close.
      return exchange.ok({ quantidade: files.length }, Readable.from(files.map((f) => encodeFields(encodeFileInfo(f)))))
    }
    case 'status':
      return status(exchange, ctx)
    case 'replicas':
      return changeReplicas(request, exchange, ctx)
    case 'delete':
      return deleteFile(request, exchange, ctx)
  }
}
