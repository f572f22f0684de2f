import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { createCipheriv, createHash } from 'node:crypto'
import { once } from 'node:events'
import { createReadStream, createWriteStream, watch } from 'node:fs'
import { readdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { fileURLToPath } from 'node:url'
import type { Test } from 'tap'

/**
 * Drives the real `bin/server` and `bin/client` as child processes (they run the compiled dist/, so build
 * first: `npx tsc -p .`, which `npm test` does in pretest). Servers listen on 127.0.0.1, port 0 unless told
 * otherwise, and are killed when the test that started them ends. Every wait is event-driven and bounded.
 */
export const ROOT = fileURLToPath(new URL('../..', import.meta.url))
export const SERVER_BIN = join(ROOT, 'bin', 'server')
export const CLIENT_BIN = join(ROOT, 'bin', 'client')
export const CHOOSER_BIN = join(ROOT, 'bin', 'deposito')

/** The exit statuses PROTOCOL.md documents, by code ("Replies" table). */
export const EXIT = {
  OK: 0,
  INTERNAL: 1,
  USAGE: 2,
  BAD_HEADER: 10,
  BAD_NAME: 11,
  BAD_BODY: 12,
  HASH_MISMATCH: 13,
  NOT_FOUND: 14,
  UNKNOWN_CLIENT: 15,
  NO_REPLICAS: 16,
  NO_SPACE: 17,
  BUSY: 18,
  TIMEOUT: 19,
  SHUTTING_DOWN: 20,
  UNREACHABLE: 21,
  CONNECTION_LOST: 22,
  IO_ERROR: 23,
  PROTOCOL_ERROR: 24,
  UNAUTHORIZED: 25,
  NOT_PRIMARY: 26,
  UNTRUSTED: 27,
  TLS_REQUIRED: 28,
} as const
export type ErrorCode = Exclude<keyof typeof EXIT, 'OK'>

export const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

/** Without this the child inherits whatever the developer's shell exports (DEPOSITO_ID, a real server...). */
export function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env }
  // The suite-wide log audit (lib/server/logger.ts) follows the servers the tests spawn.
  for (const key of Object.keys(env)) if (key.startsWith('DEPOSITO_') && key !== 'DEPOSITO_LOG_AUDIT_DIR') delete env[key]
  return env
}

/**
 * Spawns `node BIN ARGS` through `env -u NODE_OPTIONS` (which execs node in place, so the pid and signals are
 * node's). Under tap, @tapjs/processinfo hooks every spawn to put `--import=@tapjs/processinfo` into
 * NODE_OPTIONS, whatever env we pass; its require hook makes Node 20 load the extensionless ESM bins through the
 * CJS loader, and they die with ERR_REQUIRE_CYCLE_MODULE before main runs. A plain `node bin/server` is what a
 * user runs, so that is what we run. (The children are therefore not measured for coverage.)
 */
function spawnNode(bin: string, args: string[], options: SpawnOptions): ChildProcess {
  return spawn('env', ['-u', 'NODE_OPTIONS', process.execPath, bin, ...args], options)
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what()}`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

export interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
}

function exited(proc: ChildProcess): Promise<Exit> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve({ code: proc.exitCode, signal: proc.signalCode })
  return once(proc, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }))
}

// ---------------------------------------------------------------------------------------------------- server

export interface ServerProcess {
  port: number
  dataDir: string
  proc: ChildProcess
  /** Every stderr line so far (JSON log lines, or the one-line startup failure). */
  readonly logLines: string[]
  /** Resolves when the process has exited. */
  readonly exit: Promise<Exit>
  /** Sends `signal` (if still running) and resolves with the exit code (null when the signal killed it). */
  stop(signal?: NodeJS.Signals): Promise<number | null>
}

export interface StartServerOptions {
  dataDir?: string
  /** Default 0 (an ephemeral port). Pass an old server's port to restart "in place". */
  port?: number
  /** Extra flags, after the defaults (commander keeps the last value of a repeated flag). */
  args?: string[]
  /** How long to wait for the "listening" log line. */
  startTimeoutMs?: number
}

export async function startServerProcess(t: Test, options: StartServerOptions = {}): Promise<ServerProcess> {
  const dataDir = options.dataDir ?? t.testdir()
  const args = [
    ...['--host', '127.0.0.1', '--port', String(options.port ?? 0), '--data', dataDir, '--log-level', 'info'],
    ...(options.args ?? []),
  ]
  const proc = spawnNode(SERVER_BIN, args, { cwd: ROOT, env: cleanEnv(), stdio: ['ignore', 'ignore', 'pipe'] })
  const exit = exited(proc)
  t.teardown(async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL')
    await exit
  })

  const logLines: string[] = []
  // The server logs synchronously to fd 2: stderr must be drained for its whole life, or a full pipe stalls it.
  let pending = ''
  let onLine: ((line: string) => void) | undefined
  proc.stderr!.setEncoding('utf8')
  proc.stderr!.on('data', (chunk: string) => {
    pending += chunk
    let nl
    while ((nl = pending.indexOf('\n')) !== -1) {
      const line = pending.slice(0, nl)
      pending = pending.slice(nl + 1)
      logLines.push(line)
      onLine?.(line)
    }
  })

  const listening = new Promise<number>((resolve, reject) => {
    onLine = (line) => {
      let entry: { msg?: string; address?: { port?: number } }
      try {
        entry = JSON.parse(line) as typeof entry
      } catch {
        return
      }
      if (entry.msg === 'listening' && typeof entry.address?.port === 'number') resolve(entry.address.port)
    }
    void exit.then(({ code, signal }) =>
      reject(new Error(`bin/server exited (code ${code}, signal ${signal}) before listening; stderr:\n${logLines.join('\n')}${pending}`)),
    )
  })
  const port = await withTimeout(listening, options.startTimeoutMs ?? 20_000, () => `bin/server never logged "listening"; stderr so far:\n${logLines.join('\n')}${pending}`)
  onLine = undefined

  return {
    port,
    dataDir,
    proc,
    logLines,
    exit,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal)
      const { code } = await withTimeout(exit, 20_000, () => `bin/server did not exit after ${signal}`).catch((err: unknown) => {
        proc.kill('SIGKILL')
        throw err
      })
      return code
    },
  }
}

/** Runs bin/server expecting it to exit by itself (bad flags, a port in use): its status and output. */
export async function runServerToExit(args: string[], timeoutMs = 20_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const proc = spawnNode(SERVER_BIN, args, { cwd: ROOT, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d))
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d))
  const closed = once(proc, 'close')
  try {
    await withTimeout(closed, timeoutMs, () => `bin/server ${args.join(' ')} was expected to exit but kept running; stderr:\n${stderr}`)
  } catch (err) {
    proc.kill('SIGKILL')
    await closed
    throw err
  }
  return { code: proc.exitCode, stdout, stderr }
}

// ---------------------------------------------------------------------------------------------------- client

export interface ClientOptions {
  /** DEPOSITO_HOME. Leave it non-existent to let the client create it. */
  home: string
  /** Sets DEPOSITO_SERVER=127.0.0.1:<port>. */
  port?: number
  /** Extra environment; `undefined` removes a variable. */
  env?: Record<string, string | undefined>
  /** Standard input: bytes, a stream, or the path of a file to pipe. Without it stdin is /dev/null. */
  input?: Buffer | Readable | string
  /** Working directory (where `retrieve NAME` without -o writes). Default: the home's parent. */
  cwd?: string
  timeoutMs?: number
}

export interface ClientResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: Buffer
  stderr: string
}

export interface ClientProcess {
  proc: ChildProcess
  /** Resolves once the client has exited and its output is complete. */
  done: Promise<ClientResult>
}

export function spawnClient(args: string[], options: ClientOptions): ClientProcess {
  const env: NodeJS.ProcessEnv = { ...cleanEnv(), DEPOSITO_HOME: options.home }
  if (options.port !== undefined) env.DEPOSITO_SERVER = `127.0.0.1:${options.port}`
  for (const [key, value] of Object.entries(options.env ?? {})) {
    if (value === undefined) delete env[key]
    else env[key] = value
  }
  const proc = spawnNode(CLIENT_BIN, args, {
    cwd: options.cwd ?? join(options.home, '..'),
    env,
    stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  })
  const stdout: Buffer[] = []
  let stderr = ''
  proc.stdout!.on('data', (d: Buffer) => stdout.push(d))
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d))
  const closed = once(proc, 'close')

  let feeding: Promise<unknown> = Promise.resolve()
  if (options.input !== undefined) {
    const stdin = proc.stdin!
    // The client may stop reading early (a refusal, a usage error): a broken pipe is its answer, not ours.
    stdin.on('error', () => {})
    const input = options.input
    const source = typeof input === 'string' ? createReadStream(input) : Buffer.isBuffer(input) ? Readable.from([input]) : input
    feeding = pipeline(source, stdin).catch(() => {})
  }

  const done = (async () => {
    try {
      await withTimeout(closed, options.timeoutMs ?? 60_000, () => `bin/client ${JSON.stringify(args)} did not exit; stderr so far:\n${stderr}`)
    } catch (err) {
      proc.kill('SIGKILL')
      await closed
      throw err
    }
    // A client that exited without draining stdin must not leave us feeding it forever.
    proc.stdin?.destroy()
    await feeding
    return { code: proc.exitCode, signal: proc.signalCode, stdout: Buffer.concat(stdout), stderr }
  })()
  return { proc, done }
}

export function runClient(args: string[], options: ClientOptions): Promise<ClientResult> {
  return spawnClient(args, options).done
}

/**
 * The id a home saved for the server at 127.0.0.1:<port>: under its address for a server that names no cluster,
 * else under the home's one `cluster:` key (ids.json is keyed by cluster when the server names one).
 */
export async function savedId(home: string, port: number): Promise<string | undefined> {
  const ids = JSON.parse(await readFile(join(home, 'ids.json'), 'utf8')) as Record<string, string>
  const clusters = Object.keys(ids).filter((k) => k.startsWith('cluster:'))
  return ids[`127.0.0.1:${port}`] ?? (clusters.length === 1 ? ids[clusters[0]!] : undefined)
}

// ------------------------------------------------------------------------------------------------------ files

/**
 * Writes `size` pseudo-random bytes (an AES-CTR keystream of `seed`, so reproducible) without holding them in
 * memory; resolves with their sha256.
 */
export async function writeRandomFile(path: string, size: number, seed = 'deposito'): Promise<string> {
  const key = createHash('sha256').update(seed).digest()
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16))
  const hash = createHash('sha256')
  const CHUNK = 1 << 20
  const zeros = Buffer.alloc(CHUNK)
  async function* bytes() {
    for (let left = size; left > 0; left -= CHUNK) {
      const chunk = cipher.update(left >= CHUNK ? zeros : zeros.subarray(0, left))
      hash.update(chunk)
      yield chunk
    }
  }
  await pipeline(bytes, createWriteStream(path))
  return hash.digest('hex')
}

export function randomBytesSeeded(size: number, seed: string): Buffer {
  const key = createHash('sha256').update(seed).digest()
  return createCipheriv('aes-256-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(size))
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex')
}

/** sha256 of a file, streaming. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256')
  await pipeline(createReadStream(path), hash)
  return hash.digest('hex')
}

/** Every regular file under `dir`, as paths relative to it, sorted. */
export async function listTree(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true })
  return entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath ?? e.path, e.name).slice(dir.length + 1))
    .sort()
}

export async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  )
}

/**
 * Resolves with the directory's entries once `ready(entries)` holds, checking at each change fs.watch reports
 * (and once right away); rejects after `timeoutMs`.
 */
export async function waitForDir(dir: string, ready: (entries: string[]) => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<string[]> {
  const watcher = watch(dir)
  try {
    return await withTimeout(
      new Promise<string[]>((resolve, reject) => {
        let checking = false
        let again = false
        const check = async () => {
          if (checking) {
            again = true
            return
          }
          checking = true
          try {
            do {
              again = false
              const entries = await readdir(dir)
              if (await ready(entries)) return resolve(entries)
            } while (again)
          } catch (err) {
            reject(err as Error)
          } finally {
            checking = false
          }
        }
        watcher.on('change', () => void check())
        watcher.on('error', reject)
        void check()
      }),
      timeoutMs,
      () => `${dir} never reached the awaited state`,
    )
  } finally {
    watcher.close()
  }
}

/** Exactly one line of text, ending in a newline. */
export const ONE_LINE = /^[^\n]+\n$/
