import { Writable } from 'node:stream'
import pino from 'pino'
import t from 'tap'
import type { ServerContext } from '../../lib/server/context.js'
import { retireStaleCopies } from '../../lib/server/stale-copies.js'

// Retiring a stale copy runs after a request's commit: its failure must be logged, never become the request's.

function fakeContext(opts: { live: string[]; drop: () => Promise<unknown>; remember: () => Promise<void> }) {
  const logged: { level: number; msg: string; mirrors?: string[] }[] = []
  const log = pino(
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        logged.push(JSON.parse(chunk.toString()) as (typeof logged)[number])
        cb()
      },
    }),
  )
  const remembered: unknown[] = []
  const ctx = {
    store: {},
    defaultReplicas: 0,
    cluster: {
      peers: { request: opts.drop },
      membership: { live: () => opts.live },
      tombstones: {
        add: async (list: unknown[]) => {
          await opts.remember()
          remembered.push(...list)
        },
      },
    },
  } as unknown as ServerContext
  return { ctx, log, logged, remembered }
}

const copy = { owner: 'o', name: 'f', sha256: 'a'.repeat(64) }

t.test('a copy that can be neither dropped nor remembered is logged, and the call still resolves', async (t) => {
  const { ctx, log, logged, remembered } = fakeContext({
    live: [],
    drop: () => Promise.reject(new Error('unused')),
    remember: () => Promise.reject(Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' })),
  })
  await t.resolves(retireStaleCopies(ctx, { log }, copy, ['m:1']))
  t.same(remembered, [])
  t.match(logged, [{ level: 50, msg: 'could not retire a stale copy nor remember it', mirrors: ['m:1'] }])
})

t.test('a mirror that is down gets a tombstone', async (t) => {
  const { ctx, log, remembered } = fakeContext({ live: [], drop: () => Promise.reject(new Error('unused')), remember: async () => {} })
  await retireStaleCopies(ctx, { log }, copy, ['m:1'])
  t.match(remembered, [{ ...copy, mirror: 'm:1' }])
})

t.test('nothing to do without a cluster or without mirrors', async (t) => {
  const { ctx, log, remembered } = fakeContext({ live: [], drop: () => Promise.reject(new Error('unused')), remember: async () => {} })
  await retireStaleCopies(ctx, { log }, copy, [])
  await retireStaleCopies({ ...ctx, cluster: undefined }, { log }, copy, ['m:1'])
  t.same(remembered, [])
})
