import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Logger } from 'pino'
import { DepositoServer, type ServerOptions } from '../server/server.js'
import { SERVER_NODE_FLAGS } from './node-flags.js'

/**
 * `--local-cluster N` (what `npm start` runs): a primary in this process on `port`, and N-1 mirrors as child
 * processes on the next ports, each joining the primary, all under `data/node-K`, sharing a secret generated once
 * into `data/secret`. Mirrors are real processes so a walkthrough can kill one and watch the cluster cope.
 */
const SERVER_BIN = fileURLToPath(new URL('../../bin/server', import.meta.url))

export interface LocalCluster {
  primary: DepositoServer
  mirrors: ChildProcess[]
  stop(): Promise<void>
}

async function ensureSecret(root: string, given: string | undefined): Promise<{ path: string; secret: Buffer }> {
  if (given) return { path: given, secret: Buffer.from((await readFile(given, 'utf8')).trim()) }
  const path = join(root, 'secret')
  try {
    return { path, secret: Buffer.from((await readFile(path, 'utf8')).trim()) }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  const text = randomBytes(32).toString('hex')
  await writeFile(path, text + '\n', { mode: 0o600, flag: 'wx' })
  return { path, secret: Buffer.from(text) }
}

/** Mirrors speak as the primary does: TLS only if it is, plaintext beside TLS if it allows that. */
export function transportFlags(options: Pick<ServerOptions, 'tls' | 'insecurePlaintext'>): string[] {
  return [...(options.tls ? ['--tls'] : []), ...(options.insecurePlaintext ? ['--insecure-plaintext'] : [])]
}

export async function startLocalCluster(
  nodes: number,
  options: ServerOptions,
  { logLevel, secretFile }: { logLevel: string; secretFile?: string },
  log: Logger,
): Promise<LocalCluster> {
  const root = options.dataDir
  await mkdir(root, { recursive: true })
  const { path: secretPath, secret } = await ensureSecret(root, secretFile)
  const primary = await DepositoServer.start({ ...options, dataDir: join(root, 'node-1'), secret, join: undefined })
  const primaryAddress = `${options.host}:${primary.address.port}`
  const mirrors: ChildProcess[] = []
  let stopping = false
  for (let k = 2; k <= nodes; k++) {
    const port = primary.address.port + k - 1
    const args = ['--host', options.host, '--port', String(port), '--data', join(root, `node-${k}`)]
    args.push('--secret-file', secretPath, '--join', primaryAddress, '--log-level', logLevel, ...transportFlags(options))
    // This very node binary (not whichever `node` is first on PATH), with the flags of bin/server's shebang.
    const child = spawn(process.execPath, [...SERVER_NODE_FLAGS, SERVER_BIN, ...args], { stdio: ['ignore', 'inherit', 'inherit'] })
    const mirror = `${options.host}:${port}`
    child.on('error', (err) => log.error({ mirror, err: err.message }, 'could not start a mirror'))
    child.on('exit', (code, signal) => {
      if (!stopping) log.warn({ mirror, code, signal }, 'a mirror exited')
    })
    log.info({ mirror, mirrorPid: child.pid }, 'started mirror')
    mirrors.push(child)
  }
  return {
    primary,
    mirrors,
    async stop() {
      stopping = true
      const exited = mirrors.filter((m) => m.exitCode === null && m.signalCode === null).map((m) => new Promise((r) => m.once('exit', r)))
      for (const m of mirrors) m.kill('SIGTERM')
      await Promise.all([primary.close(), ...exited])
    },
  }
}
