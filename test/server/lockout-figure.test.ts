import { readFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { join } from 'node:path'
import t from 'tap'
import { runClient, savedId, sha256File, writeRandomFile } from '../helpers/bins.js'
import { byMsg, logEntries, startCluster } from '../helpers/cluster.js'
import { HOSTILE_HEADERS } from '../helpers/hostile-headers.js'
import { openIdleSockets } from '../helpers/idle-sockets.js'
import { rawRequest, replyFields } from '../helpers/server.js'

// The lockout figure, against real processes at their default limits: 1,000 idle sockets, a header
// trickled a byte per 100 ms and the hostile corpus, and still an honest client deposits and retrieves 16 MiB,
// the primary stays small and its mirror keeps answering heartbeats. Times are recorded, not asserted tightly: a
// loaded 2-core box must not fail this; 30 s is only a guard against a hang.

const MiB = 1024 * 1024
const IDLE = 1000
const HEADER_TIMEOUT_S = 10

/** The peak resident set of a process so far (kernel-tracked high-water mark), in bytes. */
async function peakRss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  return Number(/^VmHWM:\s+(\d+) kB$/m.exec(status)![1]) * 1024
}

t.test('1,000 idle sockets, a trickling header and the hostile corpus do not lock out an honest client', async (t) => {
  const dir = t.testdir()
  const { primary } = await startCluster(t, { dir, mirrors: 1 })
  const { port } = primary
  const home = join(dir, 'home')
  const src = join(dir, 'in.bin')
  const hash = await writeRandomFile(src, 16 * MiB, 'lockout')

  let started = performance.now()
  const idle = await openIdleSockets(t, port, IDLE)
  t.comment(`${IDLE} idle sockets opened in ${Math.round(performance.now() - started)} ms`)

  const trickler = connect({ host: '127.0.0.1', port })
  trickler.on('error', () => {})
  t.teardown(() => trickler.destroy())
  const trickled = new Promise<{ line: string; ms: number }>((resolve) => {
    const at = performance.now()
    trickler.once('data', (d: Buffer) => resolve({ line: d.toString().split('\n')[0]!, ms: performance.now() - at }))
  })
  // No newline ever: only the header deadline can end this one; the idle timer is reset by every byte.
  const drip = setInterval(() => trickler.write('a'), 100)
  t.teardown(() => clearInterval(drip))

  const corpus: [string, (string | Buffer)[], string][] = [
    ...HOSTILE_HEADERS,
    ['over-long line', ['op:hello|x:' + 'a'.repeat(9000)], 'BAD_HEADER'],
    ['unsigned peer request', ['op:replicate|v:1|id_cliente:4f9d7e0e-1a2b-4c3d-8e4f-5a6b7c8d9e0f|tamanho_arquivo:1|hash_arquivo:*|nome_arquivo:x\n', 'x'], 'UNAUTHORIZED'],
  ]
  const refused = await Promise.all(corpus.map(([, chunks]) => rawRequest(port, chunks)))
  t.same(
    refused.map(({ line }) => replyFields(line).code),
    corpus.map(([, , code]) => code),
    'each hostile request gets its refusal',
  )

  started = performance.now()
  const dep = await runClient(['deposit', src, '--replicas', '1'], { home, port, timeoutMs: 30_000 })
  const depositMs = performance.now() - started
  t.equal(dep.code, 0, `the honest deposit succeeds (stderr: ${dep.stderr})`)
  t.match(dep.stdout.toString(), /2 copies/, 'with its copy on the mirror')
  const out = join(dir, 'out.bin')
  started = performance.now()
  const ret = await runClient(['retrieve', 'in.bin', '-o', out], { home, port, timeoutMs: 30_000 })
  const retrieveMs = performance.now() - started
  t.equal(ret.code, 0, `and its retrieval (stderr: ${ret.stderr})`)
  t.equal(await sha256File(out), hash, 'byte for byte')
  t.comment(`16 MiB deposit ${Math.round(depositMs)} ms, retrieval ${Math.round(retrieveMs)} ms (each a bin/client process)`)

  const id = await savedId(home, port)
  const status = await rawRequest(port, [`op:status|id_cliente:${id}\n`])
  const mirror = status.body.toString().trim().split('\n').map(replyFields).find((n) => n.papel === 'espelho')!
  t.equal(mirror.estado, 'up', 'the mirror is up in the primary\'s status')
  t.ok(Date.now() - Date.parse(mirror.visto!) < 5_000, `and answered a heartbeat moments ago (${mirror.visto})`)

  const { line, ms } = await trickled
  t.match(replyFields(line), { code: 'TIMEOUT', message: `the request line did not arrive within ${HEADER_TIMEOUT_S} s` }, 'the trickled header is cut')
  t.ok(ms >= HEADER_TIMEOUT_S * 1000 - 1000, `at its deadline (${Math.round(ms)} ms after it connected)`)
  const cut = await Promise.all(idle.map((s) => s.reply))
  t.equal(cut.filter((l) => replyFields(l ?? 'code:none').code === 'TIMEOUT').length, IDLE, 'and so is every idle socket, none evicted before')

  const rss = await peakRss(primary.proc.pid!)
  t.comment(`primary peak RSS ${(rss / MiB).toFixed(1)} MiB`)
  t.ok(rss < 200 * 1000 * 1000, 'the primary\'s peak RSS stays under 200 MB')
  t.same(logEntries(primary).filter(byMsg('mirror is down')), [], 'the primary never saw its mirror down')
})
