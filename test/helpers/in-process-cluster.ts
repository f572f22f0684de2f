import { EventEmitter } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import pino from 'pino'
import type { Test } from 'tap'
import { DepositoClient } from '../../lib/client/client.js'
import type { DepositoServer, ServerOptions } from '../../lib/server/server.js'
import { startServer } from './server.js'

/**
 * A primary and its mirrors in one process, with fast heartbeats and repair passes and one shared debug log the
 * test can await (the repair pass end to end: test/server/self-repair.test.ts, delete-order.test.ts …).
 */
export const SECRET = Buffer.from('a test cluster secret, long enough')

export async function inProcessCluster(t: Test, options: Partial<ServerOptions> = {}, mirrorCount = 2) {
  const { log, lines, waitFor } = captureLog()
  const common = { log, secret: SECRET, heartbeatIntervalMs: 20, repairIntervalMs: 50, downGraceMs: 60_000, replicaStallMs: 2_000, replicaAckMs: 5_000, ...options }
  // Not t.testdir(): tap removes that before running teardowns registered after it, under nodes still writing.
  // Registered first, this removal runs last (teardowns run in reverse), once every node of the test has closed;
  // retried, as a repair pass that outlives close(0)'s grace may still be finishing a write.
  const root = await mkdtemp(join(tmpdir(), 'deposito-cluster-'))
  t.teardown(() => rm(root, { recursive: true, force: true, maxRetries: 10 }))
  const primaryOptions = (port = 0) => ({ ...common, dataDir: join(root, 'primary'), port })
  const primary = await startServer(t, primaryOptions())
  const joinAt = `127.0.0.1:${primary.address.port}`
  const mirrorOptions = (k: number, port = 0) => ({ ...common, dataDir: join(root, `mirror-${k}`), join: joinAt, port })
  const mirrors: DepositoServer[] = []
  for (let k = 0; k < mirrorCount; k++) mirrors.push(await startServer(t, mirrorOptions(k)))
  await waitFor('mirrors to join', (e) => e.msg === 'mirror joined', mirrorCount)
  const client = new DepositoClient({ server: { host: '127.0.0.1', port: primary.address.port } })
  const addressOf = (node: DepositoServer) => `127.0.0.1:${node.address.port}`
  return { root, primary, mirrors, client, primaryOptions, mirrorOptions, addressOf, lines, waitFor }
}

export type Entry = { msg?: string; name?: string; mirror?: string }

/**
 * A debug-level logger shared by a test's nodes, whose entries the test can read and await: how it knows a
 * repair pass has run or a step is done, without polling.
 */
export function captureLog() {
  const lines: Entry[] = []
  const events = new EventEmitter()
  const capture = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) {
        if (!line) continue
        lines.push(JSON.parse(line) as Entry)
        events.emit('line')
      }
      cb()
    },
  })
  /** Resolves once `count` entries match (those logged already included). */
  const waitFor = (what: string, match: (e: Entry) => boolean, count = 1) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (lines.filter(match).length < count) return
        events.off('line', check)
        clearTimeout(timer)
        resolve()
      }
      const timer = setTimeout(() => {
        events.off('line', check)
        reject(new Error(`timed out waiting for ${what}`))
      }, 15_000)
      events.on('line', check)
      check()
    })
  return { log: pino({ level: 'debug' }, capture), lines, waitFor }
}
