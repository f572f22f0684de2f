import { fetchFromMirrors } from './fetch-copy.js'
import { reconcileMirror, scrubMirror } from './reconcile.js'
import { settleReplicas, type ReplicaDeps } from './replica-count.js'
import type { Scrubber } from './scrub.js'
import { retryTombstones } from './tombstones.js'
import { clientTag } from '../protocol/client-tag.js'

/**
 * The primary's periodic repair pass (the seed checks every 60 s). In order:
 *
 * 1. stale copies (tombstones) on mirrors that are back are removed;
 * 2. the next `scrubBytes` of the primary's own copies are re-hashed (scrub.ts); a bad one is fetched back from
 *    a mirror with a good copy, and if none has one the file is logged as lost and its record kept;
 * 3. each live mirror is asked to scrub its own next slice (it drops bad copies), then what it holds is checked
 *    against the records that name it (reconcile.ts): a copy it lacks comes off the record;
 * 4. every file with fewer copies than its qtd_replicas gets new ones from the primary's copy. A copy on a mirror
 *    that is down still counts for `downGraceMs` (a restart or a short outage costs no re-replication); after
 *    that it is replaced, and the old copy is tombstoned so it goes once that mirror returns.
 *
 * One pass at a time; timers are unref'd so the loop never keeps a stopping node alive. A node with no mirrors
 * (a mirror, or a lone node) does nothing: a mirror scrubs when its primary asks. Returns a stop function whose
 * promise settles when the pass under way, if any, has stopped.
 */
export interface RepairDeps extends ReplicaDeps {
  scrubber: Scrubber
}

export interface RepairOptions {
  intervalMs: number
  /** Bytes re-hashed per pass, on the primary and on each mirror; 0 turns scrubbing off. */
  scrubBytes: number
  downGraceMs: number
}

export function startRepair(deps: RepairDeps, options: RepairOptions): () => Promise<void> {
  let stopped = false
  let timer: NodeJS.Timeout | undefined
  let running: Promise<void> = Promise.resolve()
  const pass = () => {
    running = repairPass(deps, options, () => stopped)
      .catch((err: unknown) => deps.log.error({ err: (err as Error).message }, 'repair pass failed'))
      .then(() => {
        if (!stopped) timer = setTimeout(pass, options.intervalMs).unref()
      })
  }
  timer = setTimeout(pass, options.intervalMs).unref()
  // Resolves once a pass under way has noticed (it checks between files and mirrors): the node closes its store
  // only after that, so a pass never writes into a data dir that is no longer its own.
  return () => {
    stopped = true
    clearTimeout(timer)
    return running
  }
}

export async function repairPass(deps: RepairDeps, options: Omit<RepairOptions, 'intervalMs'>, stopped: () => boolean = () => false): Promise<void> {
  const { membership, log } = deps
  if (membership.all().length === 0) return
  // Each step on its own: one that fails (an unreadable disk, a mirror that errs) must not cost the others, or a
  // single bad file would switch off every later step of every pass.
  const step = async (what: string, fields: object, run: () => Promise<unknown>) => {
    try {
      await run()
    } catch (err) {
      log.warn({ ...fields, err: (err as Error).message }, `repair: ${what} failed`)
    }
  }
  await step('retrying stale copies', {}, () => retryTombstones(deps, stopped))
  if (stopped()) return
  await step('scrubbing local copies', {}, () => scrubLocal(deps, options.scrubBytes, stopped))
  for (const mirror of membership.live()) {
    if (stopped()) return
    if (options.scrubBytes > 0) {
      await step('scrubbing a mirror', { mirror }, async () => {
        const { checked, dropped } = await scrubMirror(deps.peers, mirror, options.scrubBytes)
        log.debug({ mirror, checked, dropped }, 'mirror scrubbed a slice')
      })
    }
    // Reconciled even when its scrub failed (BUSY with a slice still under way, a timeout): what it holds can
    // still be checked.
    if (stopped()) return
    await step('checking a mirror', { mirror }, () => reconcileMirror(deps, mirror))
  }
  if (stopped()) return
  await step('restoring replica counts', {}, () => restoreCounts(deps, options.downGraceMs, stopped))
}

async function scrubLocal(deps: RepairDeps, budget: number, stopped: () => boolean): Promise<void> {
  const { store, membership, log } = deps
  const { bad } = await deps.scrubber.run(budget, { stopped })
  for (const { owner, info, unreadable } of bad) {
    if (stopped()) return
    log.error({ owner: clientTag(owner), name: info.name, sha256: info.sha256, unreadable }, 'scrub found a bad local copy')
    if (!(await fetchFromMirrors(store, membership, owner, info, log, { transport: deps.peers.options?.transport }).catch(() => false))) {
      log.error({ owner: clientTag(owner), name: info.name, sha256: info.sha256, mirrors: info.mirrors }, 'no good copy of a file is reachable')
    }
  }
}

async function restoreCounts(deps: RepairDeps, downGraceMs: number, stopped: () => boolean): Promise<void> {
  const { membership, log } = deps
  const live = membership.live()
  const counted = (m: string) => live.includes(m) || membership.downFor(m) < downGraceMs
  for (const { owner, info } of [...deps.store.allFiles()]) {
    if (stopped()) return
    const holders = (info.mirrors ?? []).filter((m) => live.includes(m)).length
    if ((info.mirrors ?? []).filter(counted).length >= info.replicas || live.length <= holders) continue
    const settled = await settleReplicas(deps, owner, info, info.replicas).catch((err: unknown) => {
      log.warn({ owner: clientTag(owner), name: info.name, err: (err as Error).message }, 'repair failed for a file')
      return info
    })
    if (settled !== info) log.info({ owner: clientTag(owner), name: info.name, mirrors: settled.mirrors }, 'repaired replica count')
  }
}
