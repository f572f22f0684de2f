import { pipeline } from 'node:stream/promises'
import { DepositoError } from '../protocol/errors.js'
import { encodeFileInfo, type DepositRequest } from '../protocol/messages.js'
import { BodyDecoder } from '../streams/body-decoder.js'
import { hashVerifier } from '../streams/hash-verifier.js'
import type { Exchange } from './connection.js'
import type { ServerContext } from './context.js'

/**
 * A deposit, from header to reply: refuse what cannot succeed before reading a byte of the body, then stream
 * socket → body decoder → hash verifier → temp file, and commit only what hashed right. Whatever fails, the
 * temp file goes and the old version of the name stays.
 */
export async function deposit(request: DepositRequest, exchange: Exchange, ctx: ServerContext): Promise<void> {
  const { store } = ctx
  if (!store.hasClient(request.clientId)) throw unknownClient(request.clientId)
  const replicas = request.replicas ?? ctx.defaultReplicas
  const mirrors = ctx.liveMirrors()
  if (replicas > mirrors) {
    throw new DepositoError('NO_REPLICAS', `asked for ${replicas} replicas but this cluster has ${mirrors} live mirrors`)
  }
  if (request.size !== null && request.size > (await store.freeBytes())) {
    throw new DepositoError('NO_SPACE', `the server has no room for ${request.size} bytes`)
  }

  const upload = store.beginUpload()
  try {
    const decoder = new BodyDecoder({ size: request.size, trailer: request.hash === null, maxTrailerBytes: exchange.limits.maxHeaderBytes })
    const verifier = hashVerifier({ expected: () => request.hash ?? decoder.result.hash })
    await pipeline(exchange.body, decoder, verifier, upload.stream)
    const info = await upload.commit(request.clientId, request.name, {
      size: decoder.result.size,
      sha256: verifier.digest!,
      replicas,
    })
    exchange.log.info({ name: info.name, size: info.size, sha256: info.sha256 }, 'deposited')
    await exchange.ok({ ...encodeFileInfo(info), copias: 1 })
  } finally {
    await upload.discard()
  }
}

export function unknownClient(id: string): DepositoError {
  return new DepositoError('UNKNOWN_CLIENT', `id_cliente ${id} was not issued by this server`)
}
