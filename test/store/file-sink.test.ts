import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { open, readFile, writeFile, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { FileSink } from '../../lib/store/file-sink.js'

type Proto = Pick<FileHandle, 'writev' | 'datasync' | 'sync'>

/** FileHandle's prototype, so tests can count or fail its calls; each patch is undone in teardown. */
async function fileHandleProto(dir: string): Promise<Proto> {
  const handle = await open(join(dir, 'probe'), 'w')
  const proto = Object.getPrototypeOf(handle) as Proto
  await handle.close()
  return proto
}

function patch<K extends keyof Proto>(t: Test, proto: Proto, key: K, make: (original: Proto[K]) => Proto[K]): void {
  const original = proto[key]
  proto[key] = make(original)
  t.teardown(() => {
    proto[key] = original
  })
}

const chunksOf = (data: Buffer, size: number) => Array.from({ length: Math.ceil(data.length / size) }, (_, i) => data.subarray(i * size, (i + 1) * size))

t.test('writes every byte, starts writeback as it goes, fsyncs once at the end and is closed when the pipeline resolves', async (t) => {
  const dir = t.testdir()
  const proto = await fileHandleProto(dir)
  let datasyncs = 0
  let syncs = 0
  patch(t, proto, 'datasync', (original) =>
    function (this: FileHandle) {
      datasyncs++
      return original.call(this)
    },
  )
  patch(t, proto, 'sync', (original) =>
    function (this: FileHandle) {
      syncs++
      return original.call(this)
    },
  )
  const data = randomBytes(64 * 1024)
  const sink = new FileSink(join(dir, 'out'), { flushEveryBytes: 8 * 1024 })
  await pipeline(Readable.from(chunksOf(data, 1000)), sink)
  t.ok(sink.closed, 'closed before the pipeline resolved')
  t.equal(sink.bytesWritten, data.length)
  t.same(await readFile(join(dir, 'out')), data)
  t.equal(syncs, 1, 'one fsync at the end')
  // One flush at a time, never awaited by the writes: at least one ran, at most one per 8 KiB.
  t.ok(datasyncs >= 1 && datasyncs <= 8, `early writeback ran (${datasyncs} times)`)
})

t.test('small files are only fsynced at the end', async (t) => {
  const dir = t.testdir()
  const proto = await fileHandleProto(dir)
  let datasyncs = 0
  patch(t, proto, 'datasync', (original) =>
    function (this: FileHandle) {
      datasyncs++
      return original.call(this)
    },
  )
  await pipeline(Readable.from([Buffer.from('hello')]), new FileSink(join(dir, 'out')))
  t.equal(await readFile(join(dir, 'out'), 'utf8'), 'hello')
  t.equal(datasyncs, 0)
})

t.test('never overwrites an existing file', async (t) => {
  const dir = t.testdir({ out: 'old' })
  await t.rejects(pipeline(Readable.from([Buffer.from('new')]), new FileSink(join(dir, 'out'))), { code: 'EEXIST' })
  t.equal(await readFile(join(dir, 'out'), 'utf8'), 'old')
})

t.test('append: a partial upload goes on after the bytes it holds', async (t) => {
  const dir = t.testdir({ out: 'old' })
  await pipeline(Readable.from([Buffer.from(' and new')]), new FileSink(join(dir, 'out'), { append: true }))
  t.equal(await readFile(join(dir, 'out'), 'utf8'), 'old and new')
})

t.test('a failed early writeback fails the stream', async (t) => {
  const dir = t.testdir()
  const proto = await fileHandleProto(dir)
  patch(t, proto, 'datasync', () => () => Promise.reject(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' })))
  const sink = new FileSink(join(dir, 'out'), { flushEveryBytes: 10 })
  await t.rejects(pipeline(Readable.from([Buffer.alloc(20), Buffer.alloc(20), Buffer.alloc(20)]), sink), { code: 'EIO' })
  t.ok(sink.destroyed)
})

t.test('a short write is retried for the rest', async (t) => {
  const dir = t.testdir()
  const proto = await fileHandleProto(dir)
  let calls = 0
  patch(t, proto, 'writev', (original) =>
    function (this: FileHandle, buffers: NodeJS.ArrayBufferView[], position?: number) {
      // The first call writes a single byte, as a filling disk might.
      if (calls++ === 0) return original.call(this, [(buffers[0] as Buffer).subarray(0, 1)], position)
      return original.call(this, buffers, position)
    } as Proto['writev'],
  )
  const sink = new FileSink(join(dir, 'out'))
  sink.cork()
  sink.write(Buffer.from('abc'))
  sink.write(Buffer.from('def'))
  sink.uncork()
  sink.end(Buffer.from('ghi'))
  await new Promise((resolve) => sink.on('close', resolve))
  t.equal(await readFile(join(dir, 'out'), 'utf8'), 'abcdefghi')
  t.ok(calls >= 2, 'the rest went in a later call')
})

t.test('destroyed mid-stream: the descriptor is closed and the error reported', async (t) => {
  const dir = t.testdir()
  const sink = new FileSink(join(dir, 'out'))
  sink.write(Buffer.from('partial'))
  const closed = new Promise((resolve) => sink.on('close', resolve))
  sink.on('error', () => {})
  sink.destroy(new Error('client vanished'))
  await closed
  t.ok(sink.closed)
  t.match(sink.errored, { message: 'client vanished' })
  // The file is the caller's to remove (Upload.discard does); its descriptor no longer holds it open.
  await writeFile(join(dir, 'out'), 'reusable')
  t.equal(await readFile(join(dir, 'out'), 'utf8'), 'reusable')
})

t.test('destroyed before it opened: nothing to close', async (t) => {
  const dir = t.testdir()
  const sink = new FileSink(join(dir, 'missing-dir', 'out'))
  sink.on('error', () => {})
  await new Promise((resolve) => sink.on('close', resolve))
  t.match(sink.errored, { code: 'ENOENT' })
})

t.test('destroyed while a write is out: the late completion goes nowhere', async (t) => {
  const dir = t.testdir()
  const proto = await fileHandleProto(dir)
  let release!: () => void
  const held = new Promise<void>((resolve) => (release = resolve))
  let entered!: () => void
  const inWrite = new Promise<void>((resolve) => (entered = resolve))
  patch(t, proto, 'writev', (original) =>
    async function (this: FileHandle, buffers: NodeJS.ArrayBufferView[], position?: number) {
      entered()
      const done = await original.call(this, buffers, position)
      await held
      return done
    } as Proto['writev'],
  )
  const sink = new FileSink(join(dir, 'out'), { flushEveryBytes: 1 })
  sink.on('error', () => {})
  const closed = new Promise((resolve) => sink.on('close', resolve))
  sink.write(Buffer.from('in flight'), () => {})
  await inWrite
  sink.destroy(new Error('cut'))
  await closed
  release()
  await held
  // A flush or write started on the closed descriptor would surface as an unhandled rejection and fail this file.
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(sink.bytesWritten, 0, 'the completion after destroy was not counted')
})
