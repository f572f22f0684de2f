import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { readFile, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:net'
import { join } from 'node:path'
import type { Test } from 'tap'
import { startServerProcess, type ServerProcess } from './bins.js'

/**
 * Clusters of real `bin/server` processes on 127.0.0.1 for the replication tests: a primary and mirrors that
 * `--join` it, all sharing one secret file. Every node runs on `--port 0`; a mirror advertises the port it really
 * got (lib/server/server.ts formats host:address().port after listening), so no port has to be guessed. Every
 * process is killed when the test that started it ends (startServerProcess's teardown).
 */

/** One parsed JSON log line of a node (pino: level, time, pid, msg, and the line's own fields). */
export interface LogEntry {
  msg?: string
  level?: number
  [key: string]: unknown
}

export function logEntries(node: ServerProcess): LogEntry[] {
  const entries: LogEntry[] = []
  for (const line of node.logLines) {
    try {
      entries.push(JSON.parse(line) as LogEntry)
    } catch {
      // not a log line (a startup failure message): skipped
    }
  }
  return entries
}

/**
 * Resolves with the log entries for which `match` holds once there are at least `count` of them (looking at
 * every line so far and each new one as it arrives); rejects after `timeoutMs` or if the node exits first.
 */
export async function waitForLog(node: ServerProcess, match: (entry: LogEntry) => boolean, { count = 1, timeoutMs = 15_000, what = 'a log line' } = {}): Promise<LogEntry[]> {
  const stderr = node.proc.stderr!
  let onData: (() => void) | undefined
  let timer: NodeJS.Timeout | undefined
  try {
    return await new Promise<LogEntry[]>((resolve, reject) => {
      const check = () => {
        const found = logEntries(node).filter(match)
        if (found.length >= count) resolve(found)
      }
      // startServerProcess's own 'data' listener was added first, so logLines already holds the new lines.
      onData = () => setImmediate(check)
      stderr.on('data', onData)
      timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${count} × ${what}; log:\n${node.logLines.join('\n')}`)), timeoutMs)
      void node.exit.then(({ code, signal }) => reject(new Error(`node exited (code ${code}, signal ${signal}) while waiting for ${what}`)))
      check()
    })
  } finally {
    if (onData) stderr.off('data', onData)
    clearTimeout(timer)
  }
}

export const byMsg = (msg: string) => (entry: LogEntry) => entry.msg === msg

/** A fresh cluster secret in a file of the test's directory. */
export async function writeSecret(dir: string, name = 'secret'): Promise<{ path: string; secret: Buffer }> {
  const text = randomBytes(24).toString('hex')
  const path = join(dir, name)
  await writeFile(path, text + '\n', { mode: 0o600 })
  return { path, secret: Buffer.from(text) }
}

export interface Cluster {
  secretFile: string
  secret: Buffer
  primary: ServerProcess
  mirrors: ServerProcess[]
  /** "127.0.0.1:PORT" of each mirror, as it advertises itself. */
  mirrorAddresses: string[]
  primaryArgs: string[]
}

export interface StartClusterOptions {
  /** Where the nodes' data dirs and the secret go: the test's t.testdir() (which wipes its dir on every call). */
  dir: string
  mirrors: number
  /** Seconds between the primary's pings (the flag's minimum, 1, by default). */
  heartbeatInterval?: number
  /** More flags for the primary (e.g. a short --repair-interval). */
  primaryFlags?: string[]
}

export function nodeAddress(node: ServerProcess): string {
  return `127.0.0.1:${node.port}`
}

/** A node's id, from its DATA/node.json (written before it listens). */
export async function nodeId(node: ServerProcess): Promise<string> {
  return (JSON.parse(await readFile(join(node.dataDir, 'node.json'), 'utf8')) as { id: string }).id
}

export async function startCluster(t: Test, { dir, mirrors: count, heartbeatInterval = 1, primaryFlags = [] }: StartClusterOptions): Promise<Cluster> {
  const { path: secretFile, secret } = await writeSecret(dir)
  const primaryArgs = ['--secret-file', secretFile, '--heartbeat-interval', String(heartbeatInterval), ...primaryFlags]
  const primary = await startServerProcess(t, { dataDir: join(dir, 'primary'), args: primaryArgs })
  const mirrors: ServerProcess[] = []
  // One at a time, each until the primary has logged its join: joins that overlap race their writes of
  // cluster.json (see test/cluster/membership.test.ts), and the restart test needs every mirror on disk.
  for (let k = 1; k <= count; k++) {
    const mirror = await startServerProcess(t, { dataDir: join(dir, `mirror-${k}`), args: mirrorArgs(secretFile, primary) })
    mirrors.push(mirror)
    await waitForLog(primary, (e) => e.msg === 'mirror joined' && e.mirror === nodeAddress(mirror), { what: `"mirror joined" for ${nodeAddress(mirror)}` })
    // The mirror logs its side once the (authenticated) answer is in, a moment after the primary logs its own.
    await waitForLog(mirror, (e) => e.msg === 'joined primary', { what: `"joined primary" on ${nodeAddress(mirror)}` })
  }
  return { secretFile, secret, primary, mirrors, mirrorAddresses: mirrors.map(nodeAddress), primaryArgs }
}

/** The flags a mirror of `primary` runs with (also for restarting one in place). */
export function mirrorArgs(secretFile: string, primary: ServerProcess): string[] {
  return ['--secret-file', secretFile, '--join', nodeAddress(primary)]
}

/**
 * A base port P such that P, P+1 … P+n-1 were all free a moment ago (bound, then released). `--local-cluster`
 * puts its mirrors on the ports after the primary's, so `--port 0` cannot serve it.
 */
export async function freeConsecutivePorts(n: number, attempts = 50): Promise<number> {
  for (let attempt = 0; attempt < attempts; attempt++) {
    const first = createServer()
    first.listen(0, '127.0.0.1')
    await once(first, 'listening')
    const base = (first.address() as { port: number }).port
    const held: Server[] = [first]
    let ok = base + n - 1 <= 65535
    for (let k = 1; ok && k < n; k++) {
      const s = createServer()
      // Not events.once: its 'listening' promise rejects on 'error', which must read as "taken", not throw.
      ok = await new Promise<boolean>((resolve) => {
        s.once('listening', () => resolve(true))
        s.once('error', () => resolve(false))
        s.listen(base + k, '127.0.0.1')
      })
      if (ok) held.push(s)
    }
    await Promise.all(held.map((s) => new Promise((resolve) => s.close(resolve))))
    if (ok) return base
  }
  throw new Error(`found no ${n} consecutive free ports in ${attempts} attempts`)
}

/** Whether a process with this pid still exists (signal 0 probes without killing). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

