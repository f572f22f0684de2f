import { createHash } from 'node:crypto'
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import pino from 'pino'
import t, { type Test } from 'tap'
import type { Membership } from '../../lib/cluster/membership.js'
import type { PeerClient } from '../../lib/cluster/peer-client.js'
import { repairPass, startRepair } from '../../lib/cluster/repair.js'
import { Scrubber } from '../../lib/cluster/scrub.js'
import { Tombstones } from '../../lib/cluster/tombstones.js'
import { BlobStore } from '../../lib/store/blob-store.js'

// One repair pass against fake mirrors: what it asks of whom, and that a mirror failing every request costs a
// warning, not the pass. (End to end: test/server/self-repair.test.ts and test/cluster/self-repair.test.ts.)

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')

async function setup(t: Test, mirrors: string[]) {
  const dir = t.testdir()
  const store = await BlobStore.open(dir)
  t.teardown(() => store.close())
  const owner = await store.issueClientId()
  const body = Buffer.from('wants one mirror')
  const upload = store.beginUpload()
  await pipeline(Readable.from([body]), upload.stream)
  await upload.commit(owner, 'f', { size: body.length, sha256: sha(body), replicas: 1, mirrors: [] })
  await upload.discard()
  const asked: string[] = []
  const refuse = async (mirror: string, fields: Record<string, unknown>) => {
    asked.push(`${String(fields.op)} ${mirror}`)
    throw new Error('connection refused')
  }
  const peers = { request: refuse, stream: refuse, open: refuse } as unknown as PeerClient
  const membership = { all: () => mirrors.map((address) => ({ address, up: true })), live: () => mirrors, downFor: () => 0 } as unknown as Membership
  const warnings: { msg?: string; mirror?: string }[] = []
  const log = pino(
    { level: 'warn' },
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        warnings.push(JSON.parse(chunk.toString()) as (typeof warnings)[number])
        cb()
      },
    }),
  )
  const deps = { store, peers, membership, log, tombstones: await Tombstones.open(dir), scrubber: new Scrubber(store) }
  return { deps, store, owner, asked, warnings }
}

t.test('a node with no mirrors does nothing', async (t) => {
  const { deps, asked } = await setup(t, [])
  await repairPass(deps, { scrubBytes: 1e9, downGraceMs: 0 })
  t.same(asked, [])
})

t.test('a mirror that refuses everything: each step is tried, warned about, and the record stays', async (t) => {
  const { deps, store, owner, asked, warnings } = await setup(t, ['m:1'])
  const before = store.stat(owner, 'f')
  await repairPass(deps, { scrubBytes: 1e9, downGraceMs: 0 })
  t.same(asked, ['scrub m:1', 'replicate m:1'], 'asked to scrub (holdings is skipped once that fails), then sent the file')
  t.match(warnings, [
    { msg: 'could not check a mirror', mirror: 'm:1' },
    { msg: 'could not copy a file to a mirror', mirror: 'm:1' },
  ])
  t.equal(store.stat(owner, 'f'), before, 'the record is untouched')
})

t.test('--scrub-bytes 0: mirrors are not asked to scrub, only for their holdings', async (t) => {
  const { deps, asked } = await setup(t, ['m:1'])
  await repairPass(deps, { scrubBytes: 0, downGraceMs: 0 })
  t.same(asked, ['holdings m:1', 'replicate m:1'])
})

t.test('a stopped pass goes no further than its current step', async (t) => {
  const { deps, asked } = await setup(t, ['m:1'])
  await repairPass(deps, { scrubBytes: 1e9, downGraceMs: 0 }, () => true)
  t.same(asked, [], 'stopped before asking any mirror')
})

t.test('stopping the loop waits for the pass under way, which stops at its next check', async (t) => {
  const { deps, asked } = await setup(t, ['m:1'])
  let release!: () => void
  const held = new Promise<void>((resolve) => (release = resolve))
  let entered!: () => void
  const inPass = new Promise<void>((resolve) => (entered = resolve))
  // The local scrub is the pass's first long step: hold it there.
  const scrubber = {
    run: async () => {
      entered()
      await held
      return { checked: 0, bad: [] }
    },
  } as unknown as Scrubber
  // The loop's timers are unref'd (they never keep a node alive): this one keeps the test's process up meanwhile.
  const alive = setInterval(() => {}, 60_000)
  t.teardown(() => clearInterval(alive))
  const stop = startRepair({ ...deps, scrubber }, { intervalMs: 1, scrubBytes: 1e9, downGraceMs: 0 })
  await inPass
  let stopped = false
  const stopping = stop().then(() => (stopped = true))
  await new Promise((resolve) => setImmediate(resolve))
  t.notOk(stopped, 'not before the pass is through')
  release()
  await stopping
  t.ok(stopped)
  t.same(asked, [], 'the pass asked no mirror anything once stopped')
})
