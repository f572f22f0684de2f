import { clientTag } from '../protocol/client-tag.js'
import type { Logger } from 'pino'
import { retireCopies } from '../cluster/tombstones.js'
import { replicaDeps, type ServerContext } from './context.js'

/**
 * Removes a version that a deposit has just replaced from the mirrors that held it. It runs after the deposit's
 * own commit, which tombstoned those copies first (deposit.ts), so its failure is not the request's: the deposit
 * that happened is answered as such, and a copy that could not be dropped now is left to its tombstone. (A
 * delete retires before its record goes, and fails if it cannot: delete.ts.)
 */
export async function retireStaleCopies(
  ctx: ServerContext,
  exchange: { log: Logger },
  copy: { owner: string; name: string; sha256: string },
  mirrors: string[],
): Promise<void> {
  if (!ctx.cluster || mirrors.length === 0) return
  try {
    await retireCopies(replicaDeps(ctx, exchange), copy.owner, copy.name, copy.sha256, mirrors)
  } catch (err) {
    exchange.log.error({ owner: clientTag(copy.owner), name: copy.name, sha256: copy.sha256, mirrors, err: (err as Error).message }, 'could not retire a stale copy nor remember it')
  }
}
