import { settleReplicas, type ReplicaDeps } from './replica-count.js'

/**
 * The primary's periodic repair pass (the seed checks every 60 s): every file with fewer copies on live mirrors
 * than its qtd_replicas gets new ones from the primary's copy. One pass at a time; timers are unref'd so the
 * loop never keeps a stopping node alive. Returns a stop function.
 *
 * Not yet here: re-hashing local copies against bit rot, asking mirrors to re-hash theirs, and removing copies
 * of deleted files from mirrors that were down at the time.
 */
export function startRepair(deps: ReplicaDeps, intervalMs: number): () => void {
  let stopped = false
  let timer: NodeJS.Timeout | undefined
  const pass = async () => {
    if (deps.membership.all().length > 0) {
      const live = deps.membership.live()
      for (const { owner, info } of [...deps.store.allFiles()]) {
        if (stopped) return
        const holders = (info.mirrors ?? []).filter((m) => live.includes(m)).length
        if (holders >= info.replicas || live.length <= holders) continue
        const settled = await settleReplicas(deps, owner, info, info.replicas).catch((err: unknown) => {
          deps.log.warn({ owner, name: info.name, err: (err as Error).message }, 'repair failed for a file')
          return info
        })
        if (settled !== info) deps.log.info({ owner, name: info.name, mirrors: settled.mirrors }, 'repaired replica count')
      }
    }
    if (!stopped) timer = setTimeout(() => void pass(), intervalMs).unref()
  }
  timer = setTimeout(() => void pass(), intervalMs).unref()
  return () => {
    stopped = true
    clearTimeout(timer)
  }
}
