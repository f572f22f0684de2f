import { createHash } from 'node:crypto'
import { mkdir, rm } from 'node:fs/promises'
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
  t.same(asked, ['scrub m:1', 'holdings m:1', 'replicate m:1'], 'asked to scrub, for its holdings even so, then sent the file')
  t.match(warnings, [
    { msg: 'repair: scrubbing a mirror failed', mirror: 'm:1' },
    { msg: 'repair: checking a mirror failed', mirror: 'm:1' },
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

t.test('a local scrub that throws costs the pass nothing else: mirrors are still checked and counts restored', async (t) => {
  const { deps, asked, warnings } = await setup(t, ['m:1'])
  const scrubber = { run: () => Promise.reject(new Error('EIO: i/o error, read')) } as unknown as Scrubber
  await repairPass({ ...deps, scrubber }, { scrubBytes: 1e9, downGraceMs: 0 })
  t.same(asked, ['scrub m:1', 'holdings m:1', 'replicate m:1'])
  t.match(warnings[0], { msg: 'repair: scrubbing local copies failed', err: /EIO/ })
})

t.test('an unreadable local copy (a directory where its blob was) is logged as bad, and the pass goes on', async (t) => {
  const { deps, store, owner, asked, warnings } = await setup(t, ['m:1'])
  const blob = store.layout.blob(owner, store.stat(owner, 'f')!.sha256)
  await rm(blob)
  await mkdir(blob)
  await repairPass(deps, { scrubBytes: 1e9, downGraceMs: 0 })
  t.match(
    warnings.find((w) => w.msg === 'scrub found a bad local copy'),
    { unreadable: /EISDIR|illegal operation on a directory/ },
    'reported as unreadable, not thrown',
  )
  t.ok(warnings.some((w) => w.msg === 'no good copy of a file is reachable'), 'no mirror holds it: logged as lost')
  t.same(asked, ['scrub m:1', 'holdings m:1', 'replicate m:1'], 'every later step still ran')
})

t.test('the pass stops between the steps for one mirror', async (t) => {
  const { deps } = await setup(t, ['m:1', 'm:2'])
  const asked: string[] = []
  let stop = false
  const ask = async (mirror: string, fields: Record<string, unknown>) => {
    asked.push(`${String(fields.op)} ${mirror}`)
    stop = true
    throw new Error('connection refused')
  }
  const peers = { request: ask, stream: ask, open: ask } as unknown as PeerClient
  await repairPass({ ...deps, peers }, { scrubBytes: 1e9, downGraceMs: 0 }, () => stop)
  t.same(asked, ['scrub m:1'], 'no holdings asked of m:1, nothing of m:2, nothing copied')
})
