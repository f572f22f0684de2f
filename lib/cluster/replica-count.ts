import type { FileInfo } from '../protocol/messages.js'
import { pushCopies } from './copy-push.js'
import { placeReplicas } from './placement.js'
import { retireCopies, type RetireDeps } from './tombstones.js'

/**
 * Brings a file to `replicas` copies on live mirrors, from the primary's own verified copy: pushes it to more
 * mirrors (placement order, skipping those that hold it) or retires it from the extras, then records the result.
 * A deposit uses it for substitutes, `replicas` to change a count, the repair pass to restore one. Copies on
 * mirrors that are down are not counted; they stay on the record until the count is met without them, and are
 * then retired (tombstoned, so they go once their mirror is back).
 */
export type ReplicaDeps = RetireDeps

export async function settleReplicas(deps: ReplicaDeps, owner: string, info: FileInfo, replicas: number): Promise<FileInfo> {
  const { store, peers, membership, log } = deps
  const live = membership.live()
  const recorded = info.mirrors ?? []
  const holders = recorded.filter((m) => live.includes(m))
  let mirrors = holders.slice(0, replicas)
  if (holders.length < replicas) {
    const candidates = placeReplicas(owner, info.name, live.filter((m) => !holders.includes(m)), live.length)
    mirrors = [...holders, ...(await pushCopies(store, peers, owner, info, candidates, replicas - holders.length, log))]
  }
  if (mirrors.length < replicas) mirrors = [...mirrors, ...recorded.filter((m) => !live.includes(m))]
  const unchanged = replicas === info.replicas && mirrors.length === recorded.length && mirrors.every((m) => recorded.includes(m))
  if (unchanged) return info
  // Retired (or tombstoned) before the record forgets them: a crash in between leaves a record naming a copy
  // that may be gone, which reconciliation corrects, never a copy nobody will remove.
  await retireCopies(deps, owner, info.name, info.sha256, recorded.filter((m) => !mirrors.includes(m)))
  return (await store.updateRecord(owner, info.name, info.sha256, { replicas, mirrors })) ?? info
}
