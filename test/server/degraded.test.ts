import { createHash } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable, Writable } from 'node:stream'
import t from 'tap'
import { depositCommand, type Output } from '../../lib/cli/client-commands.js'
import { ERROR_CODES } from '../../lib/protocol/errors.js'
import { inProcessCluster } from '../helpers/in-process-cluster.js'
import { startServer } from '../helpers/server.js'

// A mirror being down never refuses a write the cluster can make whole later: more replicas than are live, but no
// more than the cluster's mirrors, is stored on the live ones, answered DEGRADED, and completed by the repair pass
// once the mirror is back (as HDFS does). More than the cluster has at all stays NO_REPLICAS.

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex')

function cliOutput() {
  const text: string[] = []
  const sink = new Writable({ write: (c: Buffer, _e, cb) => (text.push(c.toString()), cb()) })
  return { text, out: { json: false, quiet: false, progress: false, stdout: sink, stderr: sink } as unknown as Output }
}

t.test('with a mirror down, an identical re-deposit and a new one are DEGRADED, and the repair pass completes both', async (t) => {
  // Heartbeats each second, each waiting as long: a stall under load must not take the live mirror for down.
  const { root, primary, mirrors, client, mirrorOptions, addressOf, waitFor } = await inProcessCluster(t, { heartbeatIntervalMs: 1_000 })
  const file = join(root, 'same.txt')
  const bytes = 'the same bytes, twice\n'
  await writeFile(file, bytes)
  const { text, out } = cliOutput()
  await depositCommand(client, out, file, { replicas: 2 })
  const id = await client.id()
  const down = mirrors[1]!
  const downAddress = addressOf(down)
  await down.close(0)
  await waitFor('the mirror to be marked down', (e) => e.msg === 'mirror is down' && e.mirror === downAddress)

  // The CLI turns an identical re-deposit into `replicas NAME N`; it was NO_REPLICAS with one of two mirrors down.
  t.teardown(() => void (process.exitCode = undefined))
  const again = await depositCommand(client, out, file, {})
  t.same([again.replicas, again.copies, again.degraded], [2, 2, true])
  t.equal(process.exitCode, ERROR_CODES.DEGRADED.exit, 'the CLI exits DEGRADED')
  process.exitCode = undefined
  t.match(text.join(''), /DEGRADED: same\.txt has 2 of 3 copies/)
  const fresh = await client.deposit(Readable.from([Buffer.from('new')]), { name: 'new', size: 3, replicas: 2 })
  t.same([fresh.copies, fresh.degraded, fresh.mirrors], [2, true, [addressOf(mirrors[0]!)]], 'a new deposit too: stored on the live mirror')
  t.equal(primary.store.stat(id, 'new')?.replicas, 2, 'with the count asked for on its record')

  await t.rejects(client.replicas('same.txt', 3), { code: 'NO_REPLICAS' }, 'more than the cluster has is refused')
  await t.rejects(client.deposit(Readable.from([Buffer.from('x')]), { name: 'x', size: 1, replicas: 3 }), { code: 'NO_REPLICAS' })
  t.equal(primary.store.stat(id, 'x'), undefined, 'and not stored')

  const back = await startServer(t, mirrorOptions(1, Number(downAddress.split(':')[1])))
  await waitFor('the repair pass to copy the new file to the mirror that is back', (e) => e.msg === 'repaired replica count' && e.name === 'new')
  t.equal(back.store.stat(id, 'new')?.sha256, sha('new'), 'the mirror that was down now holds the new file')
  t.equal(back.store.stat(id, 'same.txt')?.sha256, sha(bytes), 'and still the re-deposited one')
  for (const name of ['new', 'same.txt']) t.same([...primary.store.stat(id, name)!.mirrors!].sort(), [mirrors[0]!.identity.id, down.identity.id].sort(), `${name} is recorded on both, by node id`)
})
