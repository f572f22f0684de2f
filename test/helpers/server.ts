import { once } from 'node:events'
import { watch } from 'node:fs'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect } from 'node:net'
import type { Test } from 'tap'
import { DepositoServer, type ServerOptions } from '../../lib/server/server.js'

/**
 * An in-process node on 127.0.0.1:0, closed when the test ends. Without a dataDir it gets a fresh one of its
 * own (not t.testdir(): that is one dir per test, emptied again by every later call).
 */
export async function startServer(t: Test, options: Partial<ServerOptions> = {}): Promise<DepositoServer> {
  const own = options.dataDir === undefined ? await mkdtemp(join(tmpdir(), 'deposito-test-')) : undefined
  const server = await DepositoServer.start({ host: '127.0.0.1', port: 0, ...options, dataDir: own ?? options.dataDir! }).catch(
    async (err: unknown) => {
      if (own) await rm(own, { recursive: true, force: true })
      throw err
    },
  )
  t.teardown(async () => {
    await server.close(0)
    if (own) await rm(own, { recursive: true, force: true })
  })
  return server
}

export interface RawReply {
  /** Everything the server sent, as bytes. */
  bytes: Buffer
  /** The first line, decoded. */
  line: string
  /** What followed the first line. */
  body: Buffer
}

/**
 * Talks to a server the way `nc -N` does: writes `chunks` (each its own write), half-closes unless told not to,
 * and collects everything until the server closes.
 */
export async function rawRequest(port: number, chunks: (string | Buffer)[], { halfClose = true } = {}): Promise<RawReply> {
  const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true })
  await once(socket, 'connect')
  const received: Buffer[] = []
  socket.on('data', (d: Buffer) => received.push(d))
  // Half-open on our side too: once the server has said all it will, we end, or the socket would never close.
  socket.on('end', () => socket.end())
  const closed = once(socket, 'close')
  socket.on('error', () => {})
  for (const chunk of chunks) socket.write(chunk)
  if (halfClose) socket.end()
  await closed
  const bytes = Buffer.concat(received)
  const nl = bytes.indexOf(10)
  return { bytes, line: bytes.subarray(0, nl === -1 ? bytes.length : nl).toString(), body: nl === -1 ? Buffer.alloc(0) : bytes.subarray(nl + 1) }
}

/** Reads a reply line as key/value pairs without the codec (tests check the wire, not our decoder). */
export function replyFields(line: string): Record<string, string> {
  return Object.fromEntries(
    line.split('|').map((part) => {
      const i = part.indexOf(':')
      return [part.slice(0, i), decodeURIComponent(part.slice(i + 1))]
    }),
  )
}

/** Resolves once `dir` holds at least one entry: how a test knows the server has an upload in hand. */
export async function waitForEntry(dir: string): Promise<void> {
  const watcher = watch(dir)
  try {
    const changed = once(watcher, 'change')
    if ((await readdir(dir)).length > 0) return
    await changed
  } finally {
    watcher.close()
  }
}

/** Polls `check` (every 10 ms, 5 s at most): for in-process effects of heartbeats that log nothing a test can await. */
export async function waitUntil(what: string, check: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 10))
  if (!check()) throw new Error(`timed out waiting for ${what}`)
}
