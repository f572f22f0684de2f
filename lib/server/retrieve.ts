import { fetchFromMirrors, repairUnderWay } from '../cluster/fetch-copy.js'
import { DepositoError } from '../protocol/errors.js'
import { type RetrieveRequest } from '../protocol/messages.js'
import { encodeFileInfo } from '../protocol/replies.js'
import { hashVerifier } from '../streams/hash-verifier.js'
import type { Exchange } from './connection.js'
import { shownToClient, type ServerContext } from './context.js'

/**
 * Streams a stored file back, never trusting one copy: if the local bytes are missing, a mirror's copy is fetched
 * (and kept) first; the bytes are hashed on the way out, and a copy gone bad on this disk is repaired from a
 * mirror before the connection is cut, so the client's own check fails and its retry gets good bytes.
 */
export async function retrieve(request: RetrieveRequest, exchange: Exchange, ctx: ServerContext): Promise<void> {
  const { store } = ctx
  const owner = request.clientId
  // A repair of this file under way (started by an earlier read that found it bad, or by the scrub) finishes
  // before we read it.
  const before = store.hasClient(owner) ? store.stat(owner, request.name) : undefined
  if (before) await repairUnderWay(store, owner, before)
  const repair = () => {
    const info = store.stat(owner, request.name)
    if (info === undefined || ctx.cluster === undefined) return Promise.resolve(false)
    return fetchFromMirrors(store, ctx.cluster.membership, owner, info, exchange.log, { transport: ctx.cluster.peers.options.transport })
  }
  const offset = request.offset ?? 0
  const opened = await store.openBlob(owner, request.name, offset).catch(async (err: unknown) => {
    if (!(err instanceof DepositoError && err.code === 'NOT_FOUND' && (await repair()))) throw err
    return store.openBlob(owner, request.name, offset)
  })
  const { info, stream } = opened
  // A suffix cannot be checked against the whole file's hash without reading the prefix too, which is what a
  // resuming client avoids asking for; it checks the whole file itself, and on a mismatch starts over from 0,
  // where this node hashes what it sends again (and repairs a bad copy).
  const stages = offset > 0 ? [] : [hashVerifier({ expected: () => info.sha256 })]
  const fields = { ...encodeFileInfo(shownToClient(ctx, info)), offset: request.offset }
  try {
    await exchange.ok(fields, stream, ...stages)
  } catch (err) {
    if (err instanceof DepositoError && err.code === 'HASH_MISMATCH') {
      exchange.log.error({ name: info.name, err: err.message }, 'local copy is corrupt')
      await repair()
    }
    throw err
  } finally {
    stream.destroy()
  }
}
