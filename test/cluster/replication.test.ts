import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { join } from 'node:path'
import t from 'tap'
import { PeerAuth } from '../../lib/cluster/peer-auth.js'
import { ERROR_CODES } from '../../lib/protocol/errors.js'
import {
  EXIT,
  exists,
  listTree,
  randomBytesSeeded,
  runClient,
  runServerToExit,
  savedId,
  sha256,
  sha256File,
  spawnClient,
  startServerProcess,
  waitForDir,
  writeRandomFile,
  type ServerProcess,
} from '../helpers/bins.js'
import { byMsg, freeConsecutivePorts, isAlive, logEntries, mirrorArgs, nodeAddress, nodeId, startCluster, waitForLog, writeSecret } from '../helpers/cluster.js'
import { rawRequest, replyFields } from '../helpers/server.js'
import { blobPath, metaPath } from '../helpers/store-files.js'

/**
 * Replication end to end: real bin/server processes (a primary and mirrors that --join it) and bin/client, on
 * loopback. Each test starts its own nodes; startServerProcess kills whatever is left when the test ends.
 */
const MiB = 1024 * 1024

/** Every file under each node's data dir: what "nothing was stored" is checked against. */
async function snapshot(nodes: ServerProcess[]): Promise<string[][]> {
  return Promise.all(nodes.map((n) => listTree(n.dataDir)))
}

/** The addresses of the mirrors DATA/cluster.json lists (by node id, each with its address). */
async function clusterJson(node: ServerProcess): Promise<string[]> {
  return (JSON.parse(await readFile(join(node.dataDir, 'cluster.json'), 'utf8')) as { mirrors: { address: string }[] }).mirrors.map((m) => m.address)
}

const UNAUTHORIZED = /^status:error\|code:UNAUTHORIZED\|message:/

// ------------------------------------------------------------------------------------------- a three-node cluster

t.test('a primary and two mirrors', async (t) => {
  const dir = t.testdir()
  const cluster = await startCluster(t, { dir, mirrors: 2 })
  const { primary, mirrors, mirrorAddresses } = cluster
  const nodes = [primary, ...mirrors]
  const home = join(dir, 'home')
  const src = join(dir, 'big.bin')
  const size = 20 * MiB + 12_345
  const hash = await writeRandomFile(src, size, 'replicated')
  let id = ''

  await t.test('mirrors advertise the port they really listen on, and the primary records them', async (t) => {
    t.ok(
      mirrorAddresses.every((a) => /^127\.0\.0\.1:[1-9]\d*$/.test(a)),
      `real ports, not :0 (${mirrorAddresses.join(', ')})`,
    )
    t.same((await clusterJson(primary)).sort(), [...mirrorAddresses].sort(), 'DATA/cluster.json lists both mirrors')
    for (const m of mirrors) {
      t.match(logEntries(m).filter(byMsg('joined primary')), [{ primary: nodeAddress(primary), node: nodeAddress(m) }], 'the mirror logged its join once')
    }
  })

  await t.test('a 20 MiB deposit with --replicas 2 lands, byte for byte, on all three nodes', async (t) => {
    const started = Date.now()
    const dep = await runClient(['deposit', src, '--replicas', '2'], { home, port: primary.port })
    t.equal(dep.code, EXIT.OK, `exit 0 (stderr: ${dep.stderr})`)
    t.match(dep.stdout.toString(), /^deposited big\.bin \(20\.0 MiB, sha256 [0-9a-f]{16}…, 3 copies\)\n$/, 'the client reports 3 copies')
    t.ok(dep.stdout.toString().includes(hash.slice(0, 16)), 'and the right hash')
    t.equal(dep.stderr, '', 'no DEGRADED warning')
    t.comment(`20 MiB × 3 copies in ${Date.now() - started} ms`)

    id = (await savedId(home, primary.port))!
    for (const node of nodes) {
      const path = blobPath(node.dataDir, id, hash)
      t.equal((await stat(path)).size, size, `${node.dataDir}: the blob has the full size`)
      t.equal(await sha256File(path), hash, `${node.dataDir}: and hashes like the original`)
      const meta = JSON.parse(await readFile(metaPath(node.dataDir, id, 'big.bin'), 'utf8')) as Record<string, unknown>
      t.match(meta, { name: 'big.bin', size, sha256: hash }, `${node.dataDir}: the name is committed`)
      t.same(await readdir(join(node.dataDir, 'tmp')), [], `${node.dataDir}: nothing left in tmp`)
    }
    t.match(logEntries(primary).filter(byMsg('deposited')).at(-1), { name: 'big.bin', mirrors: Array }, 'the primary logged the deposit')
  })

  await t.test('--json names the mirrors that hold the copy', async (t) => {
    const small = join(dir, 'small.bin')
    await writeRandomFile(small, 100_000, 'small')
    const dep = await runClient(['--json', 'deposit', small, '--replicas', '2'], { home, port: primary.port })
    t.equal(dep.code, EXIT.OK, `exit 0 (stderr: ${dep.stderr})`)
    const doc = JSON.parse(dep.stdout.toString()) as { copies: number; degraded: boolean; mirrors: string[]; replicas: number }
    t.match(doc, { copies: 3, degraded: false, replicas: 2 })
    t.same([...doc.mirrors].sort(), [...mirrorAddresses].sort(), 'espelhos: both mirrors')

    const one = await runClient(['--json', 'deposit', small, '--name', 'one.bin', '--replicas', '1'], { home, port: primary.port })
    t.equal(one.code, EXIT.OK, `--replicas 1: exit 0 (stderr: ${one.stderr})`)
    const oneDoc = JSON.parse(one.stdout.toString()) as { copies: number; mirrors: string[] }
    t.equal(oneDoc.copies, 2, 'two copies')
    t.equal(oneDoc.mirrors.length, 1)
    const holder = mirrors.find((m) => nodeAddress(m) === oneDoc.mirrors[0])
    const other = mirrors.find((m) => nodeAddress(m) !== oneDoc.mirrors[0])
    t.ok(holder && other, 'one of our mirrors')
    t.ok(await exists(metaPath(holder!.dataDir, id, 'one.bin')), 'the mirror named holds it')
    t.notOk(await exists(metaPath(other!.dataDir, id, 'one.bin')), 'the other does not')
  })

  await t.test('--replicas 3 on three nodes is NO_REPLICAS, and nothing is stored anywhere', async (t) => {
    const before = await snapshot(nodes)
    const dep = await runClient(['deposit', src, '--name', 'three.bin', '--replicas', '3'], { home, port: primary.port })
    t.equal(dep.code, EXIT.NO_REPLICAS, `exit 16 (stderr: ${dep.stderr})`)
    t.match(dep.stderr, /^deposito: NO_REPLICAS: .*3 replicas.*2 mirrors/, 'says how many were asked and how many there are')
    t.equal(dep.stdout.length, 0)
    t.same(await snapshot(nodes), before, 'no file appeared or went on any node')
    for (const node of nodes) t.notOk(await exists(metaPath(node.dataDir, id, 'three.bin')), `${node.dataDir}: no three.bin`)
  })

  await t.test('a piped deposit of unknown size is replicated too (chunked to the mirrors)', async (t) => {
    const bytes = randomBytesSeeded(3 * MiB + 777, 'piped')
    const dep = await runClient(['deposit', '-', '--name', 'piped.bin', '--replicas', '2'], { home, port: primary.port, input: bytes })
    t.equal(dep.code, EXIT.OK, `exit 0 (stderr: ${dep.stderr})`)
    t.match(dep.stdout.toString(), /3 copies\)\n$/)
    for (const node of nodes) t.equal(await sha256File(blobPath(node.dataDir, id, sha256(bytes))), sha256(bytes), `${node.dataDir} holds it`)
  })

  await t.test('a deposit the primary refuses at the end (wrong hash) leaves nothing on the mirrors', async (t) => {
    const before = await snapshot(nodes)
    const body = randomBytesSeeded(4 * MiB, 'wrong hash')
    const header = `op:deposit|v:1|id_cliente:${id}|qtd_replicas:2|tamanho_arquivo:${body.length}|hash_arquivo:${'0'.repeat(64)}|nome_arquivo:big.bin\n`
    const reply = await rawRequest(primary.port, [header, body])
    t.match(reply.line, /^status:error\|code:HASH_MISMATCH\|/, 'HASH_MISMATCH')
    for (const m of mirrors) await waitForDir(join(m.dataDir, 'tmp'), (e) => e.length === 0, 10_000)
    t.same(await snapshot(nodes), before, 'no node committed it, and the old big.bin is untouched everywhere')
  })

  await t.test('a client that vanishes mid-body leaves nothing on the mirrors', async (t) => {
    const before = await snapshot(nodes)
    const socket = connect({ host: '127.0.0.1', port: primary.port })
    socket.on('error', () => {})
    await once(socket, 'connect')
    const size = 64 * MiB
    socket.write(`op:deposit|v:1|id_cliente:${id}|qtd_replicas:2|tamanho_arquivo:${size}|hash_arquivo:*|nome_arquivo:vanish.bin\n`)
    socket.write(randomBytesSeeded(2 * MiB, 'vanish'))
    // Both mirrors have a replica upload open: the primary is streaming to them.
    for (const m of mirrors) await waitForDir(join(m.dataDir, 'tmp'), (e) => e.length > 0, 10_000)
    socket.destroy()
    for (const node of nodes) await waitForDir(join(node.dataDir, 'tmp'), (e) => e.length === 0, 10_000)
    t.pass('every node threw its temp file away')
    t.same(await snapshot(nodes), before, 'and committed nothing')
  })

  await t.test('peer requests without a valid signature are refused', async (t) => {
    const before = await snapshot(nodes)
    const other = new PeerAuth(Buffer.from('a-different-cluster-secret-0123456789'))
    const good = new PeerAuth(cluster.secret)
    const replicateHeader = `op:replicate|id_cliente:${id}|tamanho_arquivo:1|hash_arquivo:*|nome_arquivo:x\n`
    const requests: [string, (string | Buffer)[]][] = [
      ['unsigned join', ['op:join|node:127.0.0.1:1\n']],
      ['unsigned replicate with its body', [replicateHeader, 'x', `tamanho_arquivo:1|hash_arquivo:${createHash('sha256').update('x').digest('hex')}\n`]],
      ['unsigned ping', ['op:ping\n']],
      ['unsigned drop of a stored file', [`op:drop|id_cliente:${id}|nome_arquivo:big.bin\n`]],
      ['join signed with another secret', [other.sign({ op: 'join', v: 1, node: '127.0.0.1:1' })]],
      ['replicate signed with another secret', [other.sign({ op: 'replicate', v: 1, id_cliente: id, tamanho_arquivo: 1, hash_arquivo: '*', nome_arquivo: 'x' }), 'x']],
      ['ping signed with another secret', [other.sign({ op: 'ping', v: 1 })]],
      ['drop signed with another secret', [other.sign({ op: 'drop', v: 1, id_cliente: id, nome_arquivo: 'big.bin' })]],
      ['join signed with our secret, ten minutes ago', [good.sign({ op: 'join', v: 1, node: '127.0.0.1:1' }, Date.now() - 10 * 60_000)]],
      ['join signed with our secret, then its node changed', [good.sign({ op: 'join', v: 1, node: '127.0.0.1:2' }).replace('node:127.0.0.1:2', 'node:127.0.0.1:1')]],
    ]
    for (const node of nodes) {
      for (const [what, chunks] of requests) {
        const reply = await rawRequest(node.port, chunks)
        t.match(reply.line, UNAUTHORIZED, `${what} → ${node === primary ? 'primary' : 'mirror'}: UNAUTHORIZED`)
      }
    }
    // The control: the same kind of request, signed with the cluster's secret, is served.
    const ping = await rawRequest(primary.port, [good.sign({ op: 'ping', v: 1 })])
    t.match(replyFields(ping.line), { status: 'ok', arquivos: /^\d+$/, bytes: /^\d+$/, livre: /^\d+$/ }, 'a correctly signed ping is answered')
    for (const m of mirrors) {
      const held = (await readdir(join(m.dataDir, 'clients', id, 'files'))).length
      const reply = await rawRequest(m.port, [good.sign({ op: 'ping', v: 1 })])
      t.match(replyFields(reply.line), { status: 'ok', arquivos: String(held) }, `a mirror answers a signed ping with the ${held} files it holds`)
    }

    t.same(await snapshot(nodes), before, 'nothing was stored or removed on any node')
    t.notOk((await clusterJson(primary)).includes('127.0.0.1:1'), 'cluster.json does not list 127.0.0.1:1')
    t.notOk(logEntries(primary).some((e) => e.msg === 'mirror joined' && e.mirror !== mirrorAddresses[0] && e.mirror !== mirrorAddresses[1]), 'no other join was logged')
  })

  await t.test('membership survives a restart of the primary', async (t) => {
    t.equal(await primary.stop('SIGTERM'), 0, 'the primary stops cleanly on SIGTERM')
    const restarted = await startServerProcess(t, { dataDir: primary.dataDir, port: primary.port, args: cluster.primaryArgs })
    t.equal(restarted.port, primary.port, 'same port')
    const started = Date.now()
    const up = await waitForLog(restarted, (e) => e.msg === 'mirror is up' && mirrorAddresses.includes(e.mirror as string), {
      count: 2,
      timeoutMs: 10_000,
      what: '"mirror is up" for both mirrors',
    })
    t.same(up.map((e) => e.mirror).sort(), [...mirrorAddresses].sort(), `both mirrors pinged back up (${Date.now() - started} ms)`)

    const again = join(dir, 'again.bin')
    const hash2 = await writeRandomFile(again, 2 * MiB, 'after restart')
    const dep = await runClient(['deposit', again, '--replicas', '2'], { home, port: restarted.port })
    t.equal(dep.code, EXIT.OK, `a --replicas 2 deposit works again (stderr: ${dep.stderr})`)
    t.match(dep.stdout.toString(), /3 copies\)\n$/)
    for (const node of [restarted, ...mirrors]) t.equal(await sha256File(blobPath(node.dataDir, id, hash2)), hash2, `${node.dataDir} holds it`)

    t.equal(logEntries(restarted).filter(byMsg('mirror joined')).length, 0, 'no mirror had to join again')
    for (const m of mirrors) t.equal(logEntries(m).filter(byMsg('joined primary')).length, 1, `${nodeAddress(m)} joined only once`)
    t.equal(await sha256File(blobPath(restarted.dataDir, id, hash)), hash, 'the earlier file is still on the primary')
  })
})

// ---------------------------------------------------------------------------------------- a mirror dies mid-way

t.test('kill -9 of a mirror in the middle of a 200 MiB deposit', async (t) => {
  const dir = t.testdir()
  // A repair pass every second (no scrub: re-hashing 200 MiB a second would only slow the box) restores the count.
  const primaryFlags = ['--repair-interval', '1', '--scrub-bytes', '0']
  const { primary, mirrors, secretFile } = await startCluster(t, { dir, mirrors: 2, primaryFlags })
  const [victim, survivor] = mirrors as [ServerProcess, ServerProcess]
  const home = join(dir, 'home')
  // An id first, so its directories exist and the only thing that appears in the victim's tmp is the upload.
  t.equal((await runClient(['id'], { home, port: primary.port })).code, 0)
  const id = (await savedId(home, primary.port))!
  const src = join(dir, 'huge.bin')
  const size = 200 * MiB
  const hash = await writeRandomFile(src, size, 'killed mirror')

  const client = spawnClient(['deposit', src, '--replicas', '2'], { home, port: primary.port, timeoutMs: 90_000 })
  let clientDone = false
  void client.done.finally(() => (clientDone = true)).catch(() => {})

  // The upload appears in the victim's tmp; wait until a fair part of the body is through, then kill it.
  const victimTmp = join(victim.dataDir, 'tmp')
  const [part] = await waitForDir(victimTmp, (entries) => entries.length > 0, 30_000)
  const until = Date.now() + 30_000
  let received = 0
  while (Date.now() < until && !clientDone) {
    received = (await stat(join(victimTmp, part!)).catch(() => ({ size: 0 }))).size
    if (received >= 24 * MiB) break
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  t.notOk(clientDone, 'the deposit was still running when the mirror was killed')
  t.ok(received >= 24 * MiB && received < size, `the victim had ${(received / MiB).toFixed(1)} MiB of ${size / MiB} MiB`)
  victim.proc.kill('SIGKILL')
  const killedAt = Date.now()
  t.match(await victim.exit, { signal: 'SIGKILL' }, 'the mirror is dead')

  const dep = await client.done
  const elapsed = Date.now() - killedAt
  t.ok(elapsed < 60_000, `the deposit finished ${elapsed} ms after the kill (< 60 s)`)
  // With two mirrors and one dead there is no substitute to be had: 2 copies, DEGRADED.
  t.equal(dep.code, 3, `exit 3, DEGRADED (stdout: ${dep.stdout.toString()} stderr: ${dep.stderr})`)
  t.match(dep.stdout.toString(), /^deposited huge\.bin \(200\.0 MiB, sha256 [0-9a-f]{16}…, 2 copies\)\n$/, '2 copies')
  t.match(dep.stderr, /^deposito: DEGRADED: huge\.bin has 2 of 3 copies/m, 'a DEGRADED warning on stderr')

  for (const node of [primary, survivor]) {
    t.equal(await sha256File(blobPath(node.dataDir, id, hash)), hash, `${node === primary ? 'primary' : 'surviving mirror'}: an identical copy`)
    t.ok(await exists(metaPath(node.dataDir, id, 'huge.bin')), 'committed under its name')
  }
  t.notOk(await exists(blobPath(victim.dataDir, id, hash)), 'the killed mirror has no blob for it')
  t.notOk(await exists(metaPath(victim.dataDir, id, 'huge.bin')), 'nor a record of the name')
  for (const f of await readdir(victimTmp)) t.ok((await stat(join(victimTmp, f))).size < size, `only a partial upload in its tmp (${f})`)
  t.match(
    logEntries(primary).filter(byMsg('deposited')).at(-1),
    { name: 'huge.bin', mirrors: [await nodeId(survivor)] },
    'the primary logged the deposit with the survivor only',
  )

  await t.test('the primary marks the dead mirror down, and deposits adjust', async (t) => {
    await waitForLog(primary, (e) => e.msg === 'mirror is down' && e.mirror === nodeAddress(victim), { timeoutMs: 10_000, what: '"mirror is down"' })
    const small = join(dir, 'small.bin')
    const smallHash = await writeRandomFile(small, 50_000, 'after the kill')
    // Two mirrors known, one live: stored on the live one and DEGRADED until the repair pass can complete it.
    const two = await runClient(['deposit', small, '--replicas', '2'], { home, port: primary.port })
    t.equal(two.code, ERROR_CODES.DEGRADED.exit, `--replicas 2 with one of two mirrors live: DEGRADED (stderr: ${two.stderr})`)
    t.match(two.stderr, /DEGRADED: small\.bin has 2 of 3 copies/)
    const one = await runClient(['deposit', small, '--replicas', '1'], { home, port: primary.port })
    t.equal(one.code, EXIT.OK, `--replicas 1: exit 0 (stderr: ${one.stderr})`)
    t.match(one.stdout.toString(), /2 copies, no bytes sent\)\n$/)
    t.equal(await sha256File(blobPath(survivor.dataDir, id, smallHash)), smallHash, 'on the survivor')
  })

  await t.test('restarted, the killed mirror sweeps its partial upload', async (t) => {
    // Without --join, on a new port: it still rejoins (it is a mirror), as the same member at a new address.
    const again = await startServerProcess(t, { dataDir: victim.dataDir, args: ['--secret-file', secretFile] })
    t.same(await readdir(victimTmp), [], 'tmp is empty after recovery')
    t.notOk(await exists(blobPath(victim.dataDir, id, hash)), 'and no blob was committed from the partial upload')
    await again.stop()
  })

  await t.test('restarted in place, the killed mirror gets its copy back from the repair pass', async (t) => {
    const back = await startServerProcess(t, { dataDir: victim.dataDir, port: victim.port, args: mirrorArgs(secretFile, primary) })
    const [repaired] = await waitForLog(primary, (e) => e.msg === 'repaired replica count' && e.name === 'huge.bin', {
      timeoutMs: 60_000,
      what: 'the repair pass to restore huge.bin',
    })
    t.same([...(repaired!.mirrors as string[])].sort(), [await nodeId(victim), await nodeId(survivor)].sort(), 'both mirrors hold it again (by node id)')
    t.equal(await sha256File(blobPath(back.dataDir, id, hash)), hash, 'the restarted mirror has an identical copy')
    t.ok(await exists(metaPath(back.dataDir, id, 'huge.bin')), 'committed under its name')
  })
})

// A stopped mirror (SIGSTOP, a hung disk, a full accept queue) must not stay "up" for the long timeout a replica
// transfer gets, nor hold up the heartbeat of the others: pings time out within about one heartbeat interval.
t.test(
  'a mirror that stops answering is marked down within a few heartbeats, without holding up the others',
  async (t) => {
    const dir = t.testdir()
    const { primary, mirrors } = await startCluster(t, { dir, mirrors: 2 })
    const [frozen, killed] = mirrors as [ServerProcess, ServerProcess]
    frozen.proc.kill('SIGSTOP')
    await new Promise((resolve) => setTimeout(resolve, 1_500))
    killed.proc.kill('SIGKILL')
    const started = Date.now()
    await waitForLog(primary, (e) => e.msg === 'mirror is down' && e.mirror === nodeAddress(killed), { timeoutMs: 5_000, what: 'the killed mirror marked down' })
    t.pass(`the killed mirror was marked down after ${Date.now() - started} ms`)
    await waitForLog(primary, (e) => e.msg === 'mirror is down' && e.mirror === nodeAddress(frozen), { timeoutMs: 5_000, what: 'the frozen mirror marked down' })
    t.pass(`the frozen mirror was marked down ${Date.now() - started} ms after the kill`)
  },
)

// -------------------------------------------------------------------------------- nodes outside the cluster

t.test('a node without a secret refuses every peer request', async (t) => {
  const dir = t.testdir()
  const lone = await startServerProcess(t, { dataDir: join(dir, 'data') })
  const home = join(dir, 'home')
  t.equal((await runClient(['id'], { home, port: lone.port })).code, 0)
  const id = (await savedId(home, lone.port))!
  const before = await snapshot([lone])
  const { secret } = await writeSecret(dir)
  const auth = new PeerAuth(secret)
  const requests: [string, (string | Buffer)[]][] = [
    ['unsigned join', ['op:join|node:127.0.0.1:1\n']],
    ['unsigned replicate', [`op:replicate|id_cliente:${id}|tamanho_arquivo:1|hash_arquivo:*|nome_arquivo:x\n`, 'x']],
    ['unsigned ping', ['op:ping\n']],
    ['signed join', [auth.sign({ op: 'join', v: 1, node: '127.0.0.1:1' })]],
    ['signed replicate', [auth.sign({ op: 'replicate', v: 1, id_cliente: id, tamanho_arquivo: 1, hash_arquivo: '*', nome_arquivo: 'x' }), 'x']],
    ['signed ping', [auth.sign({ op: 'ping', v: 1 })]],
    ['unsigned join with a fresh ts', [`op:join|node:127.0.0.1:1|ts:${Date.now()}\n`]],
  ]
  for (const [what, chunks] of requests) t.match((await rawRequest(lone.port, chunks)).line, UNAUTHORIZED, `${what}: UNAUTHORIZED`)
  t.same(await snapshot([lone]), before, 'nothing stored')
  t.notOk(await exists(join(lone.dataDir, 'cluster.json')), 'no cluster.json')
  // Still an ordinary depot: a client deposit works.
  const dep = await runClient(['deposit', '-', '--name', 'plain.txt'], { home, port: lone.port, input: Buffer.from('plain\n') })
  t.equal(dep.code, 0, `a client deposit still works (stderr: ${dep.stderr})`)
})

t.test('cluster flags that cannot work stop the server at start with USAGE', async (t) => {
  const dir = t.testdir()
  const noSecret = await runServerToExit(['--port', '0', '--data', join(dir, 'a'), '--join', '127.0.0.1:1'])
  t.equal(noSecret.code, 2, '--join without a secret: exit 2')
  t.match(noSecret.stderr, /USAGE: .*secret/, 'and says a secret is needed')
  const shortFile = join(dir, 'short')
  await writeFile(shortFile, 'fifteen-bytes!!\n')
  const short = await runServerToExit(['--port', '0', '--data', join(dir, 'b'), '--secret-file', shortFile])
  t.equal(short.code, 2, 'a 15-byte secret: exit 2')
  t.match(short.stderr, /USAGE: .*at least 16 bytes/)
})

// A line with no `|auth:` at all but a current `ts` passes PeerAuth.verify (see test/cluster/peer-auth.test.ts):
// anyone who can reach a node with a secret can register mirrors with it and plant files in its store.
t.test(
  'an unsigned peer request carrying a fresh ts is refused',
  async (t) => {
    const dir = t.testdir()
    const { path } = await writeSecret(dir)
    const node = await startServerProcess(t, { dataDir: join(dir, 'data'), args: ['--secret-file', path] })
    const before = await snapshot([node])
    const owner = '0c1f6c8e-3f1e-4d5b-9b5e-2f8a7c6d5e4f'
    const body = Buffer.from('planted by nobody\n')
    const bodyHash = createHash('sha256').update(body).digest('hex')
    const join_ = await rawRequest(node.port, [`op:join|node:127.0.0.1:1|ts:${Date.now()}\n`])
    t.match(join_.line, UNAUTHORIZED, 'join: UNAUTHORIZED')
    const plant = await rawRequest(node.port, [
      `op:replicate|id_cliente:${owner}|tamanho_arquivo:${body.length}|hash_arquivo:${bodyHash}|nome_arquivo:planted|ts:${Date.now()}\n`,
      body,
    ])
    t.match(plant.line, UNAUTHORIZED, 'replicate: UNAUTHORIZED')
    t.notOk(await exists(join(node.dataDir, 'cluster.json')), 'no mirror was registered')
    t.notOk(await exists(blobPath(node.dataDir, owner, bodyHash)), 'no file was planted')
    t.same(await snapshot([node]), before, 'nothing changed on disk')
  },
)

// --------------------------------------------------------------------------------------------- --local-cluster

t.test('bin/server --local-cluster 3', async (t) => {
  const dir = t.testdir()
  const data = join(dir, 'data')
  const home = join(dir, 'home')
  const base = await freeConsecutivePorts(3)
  const server = await startServerProcess(t, { dataDir: data, port: base, args: ['--local-cluster', '3', '--heartbeat-interval', '1'] })
  const mirrorPids = () => logEntries(server).filter(byMsg('started mirror')).map((e) => e.mirrorPid as number)
  // The mirrors are the server's children, not ours: if the server is SIGKILLed they would outlive the test.
  t.teardown(() => {
    for (const pid of mirrorPids()) if (isAlive(pid)) process.kill(pid, 'SIGKILL')
  })
  t.equal(server.port, base, 'the primary listens on the base port')
  const joined = await waitForLog(server, byMsg('mirror joined'), { count: 2, what: '"mirror joined"' })
  t.same(joined.map((e) => e.mirror).sort(), [`127.0.0.1:${base + 1}`, `127.0.0.1:${base + 2}`], 'mirrors on the next two ports joined')
  t.equal(mirrorPids().length, 2, 'two mirror processes')

  const secret = await stat(join(data, 'secret'))
  t.equal(secret.mode & 0o777, 0o600, 'DATA/secret is mode 0600')
  t.ok((await readFile(join(data, 'secret'), 'utf8')).trim().length >= 16, 'and holds a secret of at least 16 bytes')

  const src = join(dir, 'local.bin')
  const hash = await writeRandomFile(src, 5 * MiB + 1, 'local cluster')
  const dep = await runClient(['deposit', src, '--replicas', '2'], { home, port: base })
  t.equal(dep.code, EXIT.OK, `deposit --replicas 2: exit 0 (stderr: ${dep.stderr})`)
  t.match(dep.stdout.toString(), /3 copies\)\n$/)
  const id = (await savedId(home, base))!
  for (const k of [1, 2, 3]) {
    t.equal(await sha256File(blobPath(join(data, `node-${k}`), id, hash)), hash, `DATA/node-${k} holds the file`)
  }
  t.same((await readdir(data)).sort(), ['node-1', 'node-2', 'node-3', 'secret'], 'nothing else at the top of DATA')

  const pids = mirrorPids()
  t.equal(await server.stop('SIGTERM'), 0, 'SIGTERM stops the whole local cluster, exit 0')
  t.same(
    pids.filter((pid) => isAlive(pid)),
    [],
    'no mirror process outlives it',
  )
})
