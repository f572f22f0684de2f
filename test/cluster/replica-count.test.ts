import { createHash } from 'node:crypto'
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import pino from 'pino'
import t, { type Test } from 'tap'
import type { Membership } from '../../lib/cluster/membership.js'
import type { PeerClient } from '../../lib/cluster/peer-client.js'
import { settleReplicas } from '../../lib/cluster/replica-count.js'
import { Tombstones } from '../../lib/cluster/tombstones.js'
import type { FileInfo } from '../../lib/protocol/replies.js'
import { BlobStore } from '../../lib/store/blob-store.js'

// settleReplicas against fake mirrors, with the record changed while a copy is being pushed: a settle computed
// from a stale record must not revert the change. (End to end: test/server/replica-count.test.ts.)

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex')
const MIRRORS = ['m:1', 'm:2']

async function deposit(store: BlobStore, owner: string, body: string, replicas: number, mirrors: string[]): Promise<FileInfo> {
  const upload = store.beginUpload()
  await pipeline(Readable.from([Buffer.from(body)]), upload.stream)
  return (await upload.commit(owner, 'f', { size: body.length, sha256: sha(body), replicas, mirrors })).info
}

async function setup(t: Test, replicas: number, mirrors: string[]) {
  const dir = t.testdir()
  const store = await BlobStore.open(dir)
  t.teardown(() => store.close())
  const owner = await store.issueClientId()
  const info = await deposit(store, owner, 'some bytes', replicas, mirrors)
  const pushed: string[] = []
  const dropped: string[] = []
  // Runs while a copy is on its way to a mirror, before the mirror's reply: where a user's change lands.
  let duringPush: (mirror: string) => Promise<void> = async () => {}
  let onLive = () => {}
  const peers = {
    open: async (mirror: string) => {
      pushed.push(mirror)
      const socket = new Writable({ write: (_chunk, _enc, cb) => cb() })
      return { socket, reply: duringPush(mirror).then(() => ({})) }
    },
    request: async (mirror: string, fields: Record<string, unknown>) => {
      dropped.push(`${String(fields.op)} ${mirror}`)
      return { removido: '1' }
    },
  } as unknown as PeerClient
  const membership = { live: () => (onLive(), MIRRORS) } as unknown as Membership
  const messages: string[] = []
  const log = pino({ level: 'info' }, new Writable({ write: (chunk: Buffer, _enc, cb) => (messages.push(JSON.parse(chunk.toString()).msg), cb()) }))
  const deps = { store, peers, membership, log, tombstones: await Tombstones.open(dir) }
  return {
    deps, store, owner, info, pushed, dropped, messages,
    set duringPush(f: (mirror: string) => Promise<void>) { duringPush = f },
    set onLive(f: () => void) { onLive = f },
  }
}

t.test('the repair pass does not revert a count the user changed during its push', async (t) => {
  const s = await setup(t, 1, [])
  let changed: FileInfo | undefined
  s.duringPush = async () => {
    changed = await s.store.updateRecord(s.owner, 'f', s.info.sha256, { replicas: 0, mirrors: [] })
  }
  const settled = await settleReplicas(s.deps, s.owner, s.info, s.info.replicas)
  t.equal(s.pushed.length, 1, 'a copy was pushed')
  t.equal(settled, s.info, 'nothing settled: the caller gets back what it passed')
  t.equal(s.store.stat(s.owner, 'f'), changed, "the user's record stands")
  t.match(s.store.stat(s.owner, 'f'), { replicas: 0, mirrors: [] })
  t.same(s.dropped, [`drop ${s.pushed[0]}`], 'the copy no record names is dropped again')
  t.ok(s.messages.includes('the file changed while its copies were being settled; its record is left as it stands'))
})

t.test('a file deleted during a settle stays deleted, and the copy pushed meanwhile goes', async (t) => {
  const s = await setup(t, 1, [])
  s.duringPush = async () => void (await s.store.delete(s.owner, 'f'))
  await settleReplicas(s.deps, s.owner, s.info, 1)
  t.equal(s.store.stat(s.owner, 'f'), undefined)
  t.same(s.dropped, [`drop ${s.pushed[0]}`])
})

t.test('replicas (insist) settles again from the changed record, counting the copies it made', async (t) => {
  const s = await setup(t, 1, [])
  s.duringPush = async (mirror) => {
    if (s.pushed.length > 1) return
    // Meanwhile the repair pass records a copy on the other mirror.
    const other = MIRRORS.find((m) => m !== mirror)!
    await s.store.updateRecord(s.owner, 'f', s.info.sha256, { replicas: 1, mirrors: [other] })
  }
  const settled = await settleReplicas(s.deps, s.owner, s.info, 2, { insist: true })
  t.equal(s.store.stat(s.owner, 'f'), settled)
  t.equal(settled.replicas, 2, "the user's count is applied")
  t.same([...settled.mirrors!].sort(), MIRRORS)
  t.equal(s.pushed.length, 2, 'no copy pushed twice')
  t.same(s.dropped, [], 'nothing dropped')
})

t.test('replicas (insist) on a file deleted meanwhile is NOT_FOUND; replaced meanwhile, the deposit stands', async (t) => {
  const s = await setup(t, 0, [])
  s.duringPush = async () => void (await s.store.delete(s.owner, 'f'))
  await t.rejects(settleReplicas(s.deps, s.owner, s.info, 1, { insist: true }), { code: 'NOT_FOUND' })
  t.same(s.dropped, [`drop ${s.pushed[0]}`])

  const v1 = await deposit(s.store, s.owner, 'version one', 0, [])
  let v2: FileInfo | undefined
  s.duringPush = async () => void (v2 = await deposit(s.store, s.owner, 'version two', 0, []))
  const settled = await settleReplicas(s.deps, s.owner, v1, 1, { insist: true })
  t.equal(settled, v2, 'the newer version is reported')
  t.equal(s.store.stat(s.owner, 'f'), v2, 'and its record is untouched')
})

t.test('replicas (insist) gives up with BUSY on a record that never stops changing', async (t) => {
  const s = await setup(t, 1, MIRRORS)
  // Started, not awaited, from membership.live(): the write lands between the settle's read and its own write.
  const writes: Promise<unknown>[] = []
  s.onLive = () => void writes.push(s.store.updateRecord(s.owner, 'f', s.info.sha256, { replicas: 1, mirrors: MIRRORS }))
  let attempts = 0
  const updateRecordIf = s.store.updateRecordIf.bind(s.store)
  s.store.updateRecordIf = (...args) => (attempts++, updateRecordIf(...args))
  await t.rejects(settleReplicas(s.deps, s.owner, s.info, 2, { insist: true }), { code: 'BUSY' })
  await Promise.all(writes)
  t.equal(attempts, 4, 'a bounded number of attempts')
  t.match(s.store.stat(s.owner, 'f'), { replicas: 1 }, 'the count was not forced')
  t.same(s.pushed, [])
})
