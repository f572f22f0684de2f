import { join } from 'node:path'
import t, { type Test } from 'tap'
import { EXIT, ONE_LINE, runClient, startServerProcess } from '../helpers/bins.js'
import { FILE_FIELDS, NODE_A, NODE_B, abandoned, afterRequest, fakeNode, ops } from '../helpers/fake-node.js'

/**
 * bin/client against scripted nodes: a frozen primary costs one --response-timeout, then the mirror serves the
 * read and says so; writes reach the primary or fail with a status a script can branch on. (Timings are never
 * asserted: the client returning at all, with the mirror's answer, is the proof that it moved on.)
 */
const ID = '0c1f6c8e-3f1e-4d5b-9b5e-2f8a7c6d5e4f'
const LISTED = `status:ok|quantidade:1\n${FILE_FIELDS}\n`

async function frozenPrimaryAndMirror(t: Test) {
  const frozen = await fakeNode(t, { node: null })
  const mirror = await fakeNode(t, { node: `no:${NODE_B}|papel:espelho|cluster:${NODE_A}|primario:${frozen.address}`, reply: afterRequest(LISTED) })
  const run = (args: string[], env: Record<string, string> = {}) =>
    runClient(['--server', `${frozen.address},${mirror.address}`, '--response-timeout', '1.5', '--id', ID, ...args], { home: join(t.testdir(), 'home'), env })
  return { frozen, mirror, run }
}

t.test('a frozen primary: list is served by the mirror, said on stderr (text) or in servedBy (--json)', async (t) => {
  const { frozen, mirror, run } = await frozenPrimaryAndMirror(t)
  const text = await run(['list'])
  t.equal(text.code, EXIT.OK, text.stderr)
  t.match(text.stdout.toString(), /^NAME\s+SIZE[^\n]*\nf\s+1 B/)
  t.equal(text.stderr, `deposito: served by mirror ${mirror.address} (node 2b2b2b2b); the primary at ${frozen.address} did not answer\n`)
  const json = await run(['--json', 'list'])
  t.equal(json.code, EXIT.OK)
  t.match(json.stdout.toString(), ONE_LINE)
  t.match(JSON.parse(json.stdout.toString()), [{ name: 'f', servedBy: { address: mirror.address, node: NODE_B, role: 'mirror' } }])
  t.equal(json.stderr, '', 'no note with --json')
  for (const socket of frozen.sockets) await abandoned(socket)
  t.equal(frozen.sockets.length, 2, 'the frozen primary was asked once per command, then left')
})

t.test('DEPOSITO_RESPONSE_TIMEOUT sets the bound; a lone frozen node is UNREACHABLE, saying so', async (t) => {
  const frozen = await fakeNode(t, { node: null })
  const r = await runClient(['list'], { home: join(t.testdir(), 'home'), port: frozen.port, env: { DEPOSITO_RESPONSE_TIMEOUT: '1.5', DEPOSITO_ID: ID } })
  t.equal(r.code, EXIT.UNREACHABLE)
  t.equal(r.stderr, `deposito: UNREACHABLE: the server at ${frozen.address} accepted the connection but did not answer within 1.5 s\n`)
  for (const bad of ['0', 'soon', '-1', '3601']) {
    const u = await runClient(['--response-timeout', bad, 'list'], { home: join(t.testdir(), 'home') })
    t.equal(u.code, EXIT.USAGE, `--response-timeout ${bad}`)
    t.match(u.stderr, /^deposito: USAGE: .*--response-timeout/)
  }
})

t.test('a delete through a mirror whose primary does not answer: UNREACHABLE, naming both', async (t) => {
  const { frozen, mirror, run } = await frozenPrimaryAndMirror(t)
  const r = await run(['delete', 'f'])
  t.equal(r.code, EXIT.UNREACHABLE)
  t.equal(r.stderr, `deposito: UNREACHABLE: writes go to the primary at ${frozen.address}, which does not answer; mirror ${mirror.address} takes no writes\n`)
  t.same(ops(mirror), ['node'], 'the mirror was never sent the write')
})

t.test('a piped deposit refused with NOT_PRIMARY exits 26, with what to do', async (t) => {
  const elsewhere = await fakeNode(t, { node: 'papel:primario' })
  const demoted = await fakeNode(t, {
    node: 'papel:primario',
    reply: (_h, s) => s.end(`status:error|code:NOT_PRIMARY|message:this node is a mirror; writes go to the primary at ${elsewhere.address}|primario:${elsewhere.address}\n`),
  })
  const r = await runClient(['--id', ID, 'deposit', '-', '--name', 'p'], { home: join(t.testdir(), 'home'), port: demoted.port, input: Buffer.from('piped bytes') })
  t.equal(r.code, EXIT.NOT_PRIMARY)
  t.match(r.stderr, /^deposito: NOT_PRIMARY: this node is a mirror; writes go to the primary at 127\.0\.0\.1:\d+ — writes go to the primary: name it first in --server/)
  t.same(elsewhere.headers, [], 'not re-sent: the bytes are gone')
})

t.test('a file deposited through a mirror lands on the real primary it names', async (t) => {
  const dir = t.testdir({ 'notes.txt': 'kept on the primary\n' })
  const server = await startServerProcess(t, { dataDir: join(dir, 'data') })
  const mirror = await fakeNode(t, { node: `papel:espelho|primario:127.0.0.1:${server.port}` })
  const home = join(dir, 'home')
  const r = await runClient(['--json', 'deposit', join(dir, 'notes.txt')], { home, port: mirror.port })
  t.equal(r.code, EXIT.OK, r.stderr)
  t.match(JSON.parse(r.stdout.toString()), { name: 'notes.txt', size: 20, copies: 1 })
  t.same(ops(mirror).filter((op) => op !== 'node'), [], 'the mirror saw probes only: no hello, no list, no deposit')
  // Read back through the same --server: the mirror points at its primary, which answers, so it serves the read.
  const list = await runClient(['--json', 'list'], { home, port: mirror.port })
  t.match(JSON.parse(list.stdout.toString()), [{ name: 'notes.txt', servedBy: { address: `127.0.0.1:${server.port}`, role: 'primary' } }])
})

t.test('--help documents --response-timeout and the NOT_PRIMARY exit status', async (t) => {
  const r = await runClient(['--help'], { home: join(t.testdir(), 'home') })
  const help = r.stdout.toString()
  t.match(help, /--response-timeout <seconds>[^]*DEPOSITO_RESPONSE_TIMEOUT/)
  t.match(help, /^ {2}26 {2}NOT_PRIMARY {6}/m)
})
