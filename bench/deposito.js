// deposito's side of the bench: the real bin/server and bin/client, as a user runs them.
// A fresh server per measurement (same data dir, which it recovers at start), so its peak RSS (VmHWM) belongs to
// that one transfer; the port is whatever the OS gave it, read from its "listening" log line.
import { fileURLToPath } from 'node:url'
import { measured, settleDisk, startServer, timedRun } from './util.js'

const CLIENT = fileURLToPath(new URL('../bin/client', import.meta.url))

/** Runs `fn(address, measuring)` against a fresh server; see `measured` for what is added to its result. */
async function withServer(dataDir, fn) {
  const child = startServer(['--data', dataDir])
  const port = await child.port
  return measured(child, 'deposito server', (measuring) => fn(`127.0.0.1:${port}`, measuring))
}

/**
 * One bin/client run. Ids are saved per server address and every server here has a new port, so the id is passed
 * with --id (the data dir, and with it the id, outlives each server); DEPOSITO_HOME keeps ~ untouched.
 */
function client(server, home, id, args) {
  const global = ['--server', server, ...(id ? ['--id', id] : [])]
  return timedRun(process.execPath, [CLIENT, ...global, ...args], { env: { ...process.env, DEPOSITO_HOME: home } })
}

/** Asks a server for a client id, once, before anything is timed. */
export function issueId(dataDir, home) {
  return withServer(dataDir, async (server) => {
    const { stdout } = await client(server, home, undefined, ['id', '--json'])
    return { id: JSON.parse(stdout).id }
  })
}

/**
 * Wall time of `bin/client deposit`, spawn to exit 0: process start, connect, send, server fsync+commit, reply.
 * The previous run's copy is deleted first, untimed: replacing it would free the old blob inside the timed commit
 * (over a second per GiB on an ext4 mounted with discard, as here), a cost of the bench's repetition rather than
 * of a deposit. The baseline removes its old file the same way.
 */
export function depositoDeposit(file, name, dataDir, home, id) {
  return withServer(dataDir, async (server, measuring) => {
    const { stdout } = await client(server, home, id, ['list', '--json'])
    if (JSON.parse(stdout).some((f) => f.name === name)) await client(server, home, id, ['delete', name])
    settleDisk()
    await measuring()
    const { seconds } = await client(server, home, id, ['deposit', file, '--name', name, '--no-progress'])
    return { seconds }
  })
}

/** Wall time of `bin/client retrieve -o PATH`, spawn to exit 0 (it checks the hash and renames into place). */
export function depositoRetrieve(name, out, dataDir, home, id) {
  return withServer(dataDir, async (server, measuring) => {
    settleDisk()
    await measuring()
    const { seconds } = await client(server, home, id, ['retrieve', name, '-o', out, '--no-progress'])
    return { seconds }
  })
}

/** Time for bin/client to start and exit doing nothing: the fixed cost inside every deposito figure. */
export async function clientStartup() {
  const { seconds } = await timedRun(process.execPath, [CLIENT, '--help'])
  return seconds
}
