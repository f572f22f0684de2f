import { retireCopies } from '../cluster/tombstones.js'
import { DepositoError } from '../protocol/errors.js'
import { type DeleteRequest } from '../protocol/messages.js'
import { encodeFileInfo, type FileInfo } from '../protocol/replies.js'
import type { Exchange } from './connection.js'
import { knownMirrors, replicaDeps, shownToClient, type ServerContext } from './context.js'

/** Attempts before a delete gives up on a record that keeps changing under it (deposits, repair pushes). */
const ATTEMPTS = 4

/**
 * `delete`: nothing is forgotten before it is remembered. The version's copies are retired from every mirror
 * first — dropped at once on live ones, tombstoned on the others (every known mirror, not only those the record
 * names: one may hold a copy the record lost, an ack that timed out) — and only then is the record removed. A
 * crash in between leaves a record whose mirrors lack their copies, which the repair pass sees and makes good;
 * the other order left copies that no record names, served by a mirror to a reader falling back to it. The
 * record is removed only if it is still the one whose copies were retired; if it changed meanwhile (a newer
 * version, a copy pushed by the repair pass), the round is repeated for the record as it now stands.
 */
export async function deleteFile(request: DeleteRequest, exchange: Exchange, ctx: ServerContext): Promise<void> {
  const { store } = ctx
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const info = store.stat(request.clientId, request.name)
    if (!info) throw new DepositoError('NOT_FOUND', `no file named ${JSON.stringify(request.name)}`)
    await retireEverywhere(request.clientId, info, exchange, ctx)
    if (await store.deleteRecordIf(request.clientId, info)) {
      exchange.log.info({ name: info.name, sha256: info.sha256 }, 'deleted')
      return exchange.ok(encodeFileInfo(shownToClient(ctx, info)))
    }
  }
  throw new DepositoError('BUSY', `${JSON.stringify(request.name)} kept changing while it was being deleted; try again`)
}

/** Unlike a stale copy's retirement after a commit, a failure here fails the delete: the record stays. */
async function retireEverywhere(owner: string, info: FileInfo, exchange: Exchange, ctx: ServerContext): Promise<void> {
  if (!ctx.cluster) return
  const mirrors = [...new Set([...(info.mirrors ?? []), ...knownMirrors(ctx)])]
  await retireCopies(replicaDeps(ctx, exchange), owner, info.name, info.sha256, mirrors)
}
