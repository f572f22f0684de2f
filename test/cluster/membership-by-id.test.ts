import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { EXIT, runClient, runServerToExit, savedId, startServerProcess, writeRandomFile, exists } from '../helpers/bins.js'
import { byMsg, logEntries, mirrorArgs, nodeAddress, nodeId, startCluster, waitForLog } from '../helpers/cluster.js'
import { rawRequest, replyFields } from '../helpers/server.js'

// Membership by node id, with real processes: a mirror back under another spelling of its address is one member
// (issue 9, item 2), and a dead mirror removed with `bin/server remove-mirror` is gone for good.

const blobsOf = async (dataDir: string, id: string): Promise<string[]> => ((await exists(join(dataDir, 'clients', id, 'blobs'))) ? readdir(join(dataDir, 'clients', id, 'blobs')) : [])
const clusterJson = async (dataDir: string) => JSON.parse(await readFile(join(dataDir, 'cluster.json'), 'utf8')) as { mirrors: { id: string; address: string }[]; removed: string[] }

t.test('a mirror restarted as localhost:PORT instead of 127.0.0.1:PORT is the same member', async (t) => {
  const dir = t.testdir()
  const { primary, mirrors, secretFile } = await startCluster(t, { dir, mirrors: 2 })
  const moved = mirrors[0]!
  const movedId = await nodeId(moved)
  t.equal(await moved.stop('SIGTERM'), 0)
  // Without --join: a mirror keeps its role and rejoins the primary it recorded.
  const back = await startServerProcess(t, { dataDir: moved.dataDir, port: moved.port, args: ['--secret-file', secretFile, '--advertise', `localhost:${moved.port}`] })
  await waitForLog(primary, (e) => e.msg === 'mirror joined' && e.mirror === `localhost:${back.port}`, { what: 'the rejoin under localhost' })
  const members = (await clusterJson(primary.dataDir)).mirrors
  t.equal(members.length, 2, 'cluster.json: still two mirrors')
  t.same(members.find((m) => m.id === movedId)?.address, `localhost:${back.port}`, 'its address updated')

  const home = join(dir, 'home')
  const src = join(dir, 'f.bin')
  const hash = await writeRandomFile(src, 50_000, 'one member')
  const dep = await runClient(['--json', 'deposit', src, '--replicas', '2'], { home, port: primary.port })
  t.equal(dep.code, EXIT.OK, `stderr: ${dep.stderr}`)
  t.match(JSON.parse(dep.stdout.toString()), { copies: 3, degraded: false })
  const id = (await savedId(home, primary.port))!
  const holders = []
  for (const node of [primary, back, mirrors[1]!]) if ((await blobsOf(node.dataDir, id)).includes(hash)) holders.push(node)
  t.equal(holders.length, 3, 'three copies reported, three blobs on disk')
  const three = await runClient(['deposit', src, '--name', 'g.bin', '--replicas', '3'], { home, port: primary.port })
  t.equal(three.code, EXIT.NO_REPLICAS, 'a third mirror does not exist, however many spellings the addresses have')
  const status = await rawRequest(primary.port, [`op:status|id_cliente:${id}\n`])
  t.equal(replyFields(status.line).nos, '3', 'status: the primary and two mirrors, each once')
})

t.test('remove-mirror: a dead mirror is forgotten for good and its files regain their count', async (t) => {
  const dir = t.testdir()
  const { primary, mirrors, secretFile } = await startCluster(t, { dir, mirrors: 2 })
  const home = join(dir, 'home')
  const src = join(dir, 'f.bin')
  const hash = await writeRandomFile(src, 50_000, 'removal')
  const dep = await runClient(['--json', 'deposit', src, '--replicas', '1'], { home, port: primary.port })
  t.equal(dep.code, EXIT.OK, `stderr: ${dep.stderr}`)
  const holderAddress = (JSON.parse(dep.stdout.toString()) as { mirrors: string[] }).mirrors[0]
  const dead = mirrors.find((m) => nodeAddress(m) === holderAddress)!
  const other = mirrors.find((m) => m !== dead)!
  const [deadId, otherId] = [await nodeId(dead), await nodeId(other)]
  const id = (await savedId(home, primary.port))!
  t.notOk((await blobsOf(other.dataDir, id)).includes(hash), 'the other mirror has no copy yet')
  const remove = (node: string) => runServerToExit(['remove-mirror', node, '--primary', nodeAddress(primary), '--secret-file', secretFile])

  const live = await remove(nodeAddress(other))
  t.equal(live.code, EXIT.USAGE, `a live mirror is not removed (stderr: ${live.stderr})`)
  t.match(live.stderr, /USAGE: .*is up; stop it before removing it/)
  const unknown = await remove('127.0.0.1:1')
  t.equal(unknown.code, EXIT.NOT_FOUND, 'an address no member has: NOT_FOUND')
  const unsigned = await runServerToExit(['remove-mirror', deadId, '--primary', nodeAddress(primary)])
  t.equal(unsigned.code, EXIT.USAGE, 'no secret: USAGE')

  dead.proc.kill('SIGKILL')
  await waitForLog(primary, (e) => e.msg === 'mirror is down' && e.node === deadId, { what: 'the dead mirror marked down' })
  const removed = await remove(deadId)
  t.equal(removed.code, EXIT.OK, `stderr: ${removed.stderr}`)
  t.equal(removed.stdout, `removed mirror ${deadId} from the cluster of ${nodeAddress(primary)}; 1 files copied to other mirrors\n`)
  t.ok((await blobsOf(other.dataDir, id)).includes(hash), 'its file was copied to the remaining mirror')
  t.same(await clusterJson(primary.dataDir), { mirrors: [{ id: otherId, address: nodeAddress(other) }], removed: [deadId] })
  const list = await rawRequest(primary.port, [`op:list|id_cliente:${id}\n`])
  t.match(replyFields(list.body.toString().trim()), { nome_arquivo: 'f.bin', espelhos: nodeAddress(other) }, 'the record names the other mirror only')
  t.equal((await remove(deadId)).code, EXIT.OK, 'removing it again is harmless (a retried command)')

  const back = await startServerProcess(t, { dataDir: dead.dataDir, port: dead.port, args: mirrorArgs(secretFile, primary) })
  const refused = await waitForLog(back, (e) => e.msg === 'could not join primary yet', { what: 'the refused rejoin' })
  t.match(refused[0], { err: /was removed from this cluster; wipe its data dir/ }, 'its rejoin is refused, with what to do')
  t.equal(logEntries(primary).filter((e) => e.msg === 'mirror joined' && e.node === deadId).length, 1, 'the primary logged its first join only')
  t.equal(logEntries(primary).filter(byMsg('mirror removed from the cluster')).length, 1)
  t.same((await clusterJson(primary.dataDir)).mirrors.map((m) => m.id), [otherId], 'still not a member')
})
