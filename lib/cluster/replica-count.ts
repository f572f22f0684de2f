import { DepositoError } from '../protocol/errors.js'
import type { FileInfo } from '../protocol/replies.js'
import { pushCopies } from './copy-push.js'
import { placeReplicas } from './placement.js'
import { retireCopies, type RetireDeps } from './tombstones.js'
import { clientTag } from '../protocol/client-tag.js'

/**
 * Brings a file to `replicas` copies on live mirrors, from the primary's own verified copy: pushes it to more
 * mirrors (placement order, skipping those that hold it) or retires it from the extras, then records the result.
 * A deposit uses it for substitutes, `replicas` to change a count, the repair pass to restore one. Copies on
 * mirrors that are down are not counted; they stay on the record until the count is met without them, and are
 * then retired (tombstoned, so they go once their mirror is back).
 *
 * Pushes take long, and the record may change meanwhile (the user's `replicas`, a deposit, a delete). The result
 * is written only over the record that was read, so a stale view never reverts a newer change. By default a
 * changed record is left as it stands (the repair pass and a deposit's substitutes: whoever changed it acted
 * later). With `insist` (the `replicas` command, which is the change), the count is settled again from the record
 * as it now stands.
 */
export type ReplicaDeps = RetireDeps

export interface SettleOptions {
  insist?: boolean
}

/** Attempts before `insist` gives up on a record that keeps changing under it. */
const ATTEMPTS = 4

export async function settleReplicas(deps: ReplicaDeps, owner: string, info: FileInfo, replicas: number, options: SettleOptions = {}): Promise<FileInfo> {
  const { store, log } = deps
  let base = info
  // Copies made by an earlier attempt that no record names yet: they count as held on the next one.
  let extra: string[] = []
  for (let attempt = 1; ; attempt++) {
    const outcome = await settleOnce(deps, owner, base, extra, replicas)
    if ('settled' in outcome) return outcome.settled
    const current = store.hasClient(owner) ? store.stat(owner, info.name) : undefined
    const sameVersion = current !== undefined && current.sha256 === base.sha256
    const unnamed = outcome.made.filter((m) => !(sameVersion && (current.mirrors ?? []).includes(m)))
    if (options.insist && sameVersion && attempt < ATTEMPTS) {
      base = current
      extra = unnamed
      continue
    }
    // Copies made here that no record names would sit on their mirrors unaccounted for, and could serve a
    // replaced or deleted file to a reader that falls back to a mirror.
    await retireCopies(deps, owner, base.name, base.sha256, unnamed)
    if (!options.insist) {
      log.info({ owner: clientTag(owner), name: info.name }, 'the file changed while its copies were being settled; its record is left as it stands')
      return info
    }
    if (!current) throw new DepositoError('NOT_FOUND', `no file named ${JSON.stringify(info.name)}`)
    if (sameVersion) throw new DepositoError('BUSY', `${JSON.stringify(info.name)} kept changing while its copies were being settled; try again`)
    // A deposit replaced the version whose count was asked for: the deposit's own count stands.
    return current
  }
}

/** Either the record written, or the copies this attempt's record would have named that no record does. */
type Outcome = { settled: FileInfo } | { made: string[] }

async function settleOnce(deps: ReplicaDeps, owner: string, info: FileInfo, extra: string[], replicas: number): Promise<Outcome> {
  const { store, peers, membership, log } = deps
  const live = membership.live()
  const recorded = info.mirrors ?? []
  const held = [...recorded, ...extra]
  const holders = held.filter((m) => live.includes(m))
  let mirrors = holders.slice(0, replicas)
  if (holders.length < replicas) {
    const candidates = placeReplicas(owner, info.name, live.filter((m) => !holders.includes(m)), live.length)
    mirrors = [...holders, ...(await pushCopies(store, peers, owner, info, candidates, replicas - holders.length, log))]
  }
  if (mirrors.length < replicas) mirrors = [...mirrors, ...held.filter((m) => !live.includes(m))]
  const made = [...extra, ...mirrors.filter((m) => !held.includes(m))]
  const unchanged = replicas === info.replicas && mirrors.length === recorded.length && mirrors.every((m) => recorded.includes(m))
  if (unchanged && extra.length === 0) return { settled: info }
  // Checked before retiring, so a stale view drops nothing; the write below checks again, atomically.
  if (store.stat(owner, info.name) !== info) return { made }
  // Retired (or tombstoned) before the record forgets them: a crash in between leaves a record naming a copy
  // that may be gone, which reconciliation corrects, never a copy nobody will remove.
  await retireCopies(deps, owner, info.name, info.sha256, held.filter((m) => !mirrors.includes(m)))
  const settled = await store.updateRecordIf(owner, info, { replicas, mirrors })
  return settled ? { settled } : { made: made.filter((m) => mirrors.includes(m)) }
}
