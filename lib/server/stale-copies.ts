import type { Logger } from 'pino'
import { retireCopies } from '../cluster/tombstones.js'
import { replicaDeps, type ServerContext } from './context.js'

/**
 * Removes a version that a request has just made stale (a delete, a replaced file) from the mirrors that held it.
 * It runs after the request's own commit, so its failure is not the request's: a deposit or delete that happened
 * is answered as such, and a copy that could neither be dropped nor remembered in a tombstone (the disk full right
 * after a large deposit) is logged — it stays on that mirror, unlisted, until removed by hand.
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
    exchange.log.error({ ...copy, mirrors, err: (err as Error).message }, 'could not retire a stale copy nor remember it')
  }
}
