import { once } from 'node:events'
import { readFile, stat } from 'node:fs/promises'
import { connect } from 'node:net'
import { join } from 'node:path'
import t from 'tap'
import { randomBytesSeeded, startServerProcess } from '../helpers/bins.js'
import { depositFrom, depositLine, newId, newToken, offsetOf, partialPath, sha, type Resumable } from '../helpers/resume.js'

// A primary killed with SIGKILL mid-deposit keeps what reached its disk; restarted on the same data dir, it
// reports the partial and the deposit resumes from there.

t.test('kill -9 of the primary mid-deposit, restart: offset reports the partial, the resume completes', async (t) => {
  const dataDir = join(t.testdir(), 'data')
  const first = await startServerProcess(t, { dataDir })
  const id = await newId(first.port)
  const upload: Resumable = { id, token: newToken(), name: 'crash.bin', file: randomBytesSeeded(8 * 1024 * 1024, 'crash') }
  const k = 5 * 1024 * 1024
  const socket = connect({ host: '127.0.0.1', port: first.port })
  socket.on('error', () => {})
  await once(socket, 'connect')
  socket.write(depositLine(upload))
  socket.write(upload.file.subarray(0, k))
  const path = partialPath(dataDir, upload)
  for (let i = 0; i < 1000 && (await stat(path).then((s) => s.size, () => 0)) === 0; i++) await new Promise((resolve) => setTimeout(resolve, 5))
  t.equal(await first.stop('SIGKILL'), null, 'killed, not exited')
  socket.destroy()

  const second = await startServerProcess(t, { dataDir })
  const at = await offsetOf(second.port, id, upload.token)
  t.equal(at.status, 'ok', 'the restarted primary reports the partial')
  const offset = Number(at.offset)
  t.ok(offset > 0 && offset <= k, `offset ${offset} within the ${k} bytes sent`)
  const done = await depositFrom(second.port, upload, offset)
  t.same([done.status, done.hash_arquivo], ['ok', sha(upload.file)])
  const blob = join(dataDir, 'clients', id, 'blobs', sha(upload.file))
  t.ok((await readFile(blob)).equals(upload.file), 'the stored file is byte-identical')
  t.ok(second.logLines.some((l) => l.includes('resuming a partial upload') && /"rehashMs":\d+/.test(l)), 'the resume is logged, with its re-hash time')
})
