import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { basename, join, resolve } from 'node:path'
import { createHash } from 'node:crypto'
import { pipeline } from 'node:stream/promises'
import type { Readable } from 'node:stream'
import { DepositoError, ERROR_CODES, localIoError } from '../protocol/errors.js'
import type { FileInfo } from '../protocol/replies.js'
import type { DepositoClient, DepositResult, ServedBy } from '../client/client.js'
import { formatBytes, formatDate, formatTable, mirrorNote, printableName } from './format.js'
import { createProgress } from './progress.js'
import { DEFAULT_RETRIES, depositWithRetry, type ResumableDeposit, type ResumeNote, type RetryPolicy } from '../client/resume.js'
import type { UploadTokens } from '../client/upload-tokens.js'
import { retrieveToFile, retrieveToStream } from './retrieve-file.js'

/**
 * What each `bin/client` command does once its arguments are parsed. Results go to stdout (a line for people, or
 * one JSON document with --json); progress and errors go to stderr.
 */
export interface Output {
  json: boolean
  quiet: boolean
  progress: boolean
  stdout: NodeJS.WriteStream
  stderr: NodeJS.WriteStream
}

/** Who served the last read, for --json; and a note on stderr when a mirror stood in for the primary. */
function servedBy(client: DepositoClient, out: Output): ServedBy | undefined {
  const origin = client.lastRead
  if (origin?.missedPrimary !== undefined && !out.json) out.stderr.write(mirrorNote(origin.servedBy, origin.missedPrimary))
  return origin?.servedBy
}

function result(out: Output, doc: unknown, human: string): void {
  if (out.json) out.stdout.write(JSON.stringify(doc) + '\n')
  else if (!out.quiet && human) out.stdout.write(human)
}

/** A regular file can be read again from the start (to follow a NOT_PRIMARY refusal, or to resume); a pipe cannot. */
async function openInput(path: string, stdin: Readable): Promise<{ source: Readable; size?: number; file?: ResumableDeposit['file'] }> {
  if (path === '-') return { source: stdin }
  let info
  try {
    info = await stat(path)
  } catch (err) {
    throw localIoError(err, `cannot read ${path}`)
  }
  if (!info.isFile()) throw new DepositoError('IO_ERROR', `${path} is not a regular file`)
  const open = () => createReadStream(path)
  return { source: open(), size: info.size, file: { path: resolve(path), mtimeMs: info.mtimeMs, open } }
}

/** How a command retries a cut transfer: `--retries`, `--no-resume`, and (for tests) the clock. */
export interface RetryFlags {
  retries?: number
  resume?: boolean
  tokens?: UploadTokens
  sleep?: (ms: number) => Promise<void>
}

function retryPolicy(flags: RetryFlags): RetryPolicy {
  return { retries: flags.retries ?? DEFAULT_RETRIES, ...(flags.sleep ? { sleep: flags.sleep } : {}) }
}

function resumedLine(note: Omit<ResumeNote, 'error'>): string {
  return `deposito: connection lost at ${formatBytes(note.lostAt)}; resuming from ${formatBytes(note.from)} (try ${note.attempt} of ${note.of})\n`
}

export async function depositCommand(
  client: DepositoClient,
  out: Output,
  file: string,
  options: { name?: string; replicas?: number } & RetryFlags,
  stdin: Readable = process.stdin,
): Promise<DepositResult> {
  const name = options.name ?? (file === '-' ? undefined : basename(file))
  if (!name) throw new DepositoError('USAGE', 'reading from stdin needs --name NAME')
  const { source, size, file: regular } = await openInput(file, stdin)
  const same = size === undefined ? undefined : await alreadyStored(client, name, file, size)
  if (same) {
    // The seed: depositing an identical file changes its replica count. No byte of it is sent again.
    source.destroy()
    const done = await client.replicas(name, options.replicas ?? same.replicas)
    report(out, done, `${printableName(done.name)} is already stored, unchanged (${copiesText(done)}, no bytes sent)\n`)
    return done
  }
  const progress = createProgress(out.progress, 'deposit', out.stderr)
  progress.start(size)
  try {
    // A regular file is re-opened by each try; the first stream only served the alreadyStored check's stat.
    if (regular) source.destroy()
    const done = await depositWithRetry(client, {
      name,
      size,
      replicas: options.replicas,
      ...(regular ? { file: regular } : { source }),
      ...(options.resume !== false && options.tokens ? { tokens: options.tokens } : {}),
      policy: retryPolicy(options),
      onBytes: (n) => progress.update(n),
      onResume: (note) => out.stderr.write(resumedLine(note)),
      notify: (line) => out.stderr.write(`deposito: ${line}\n`),
    })
    progress.stop()
    report(out, done, `deposited ${printableName(done.name)} (${formatBytes(done.size)}, sha256 ${done.sha256.slice(0, 16)}…, ${copiesText(done)})\n`)
    return done
  } finally {
    progress.stop()
    source.destroy()
  }
}

const copiesText = (done: DepositResult) => `${done.copies} ${done.copies === 1 ? 'copy' : 'copies'}`

function report(out: Output, done: DepositResult, human: string): void {
  result(out, done, human)
  if (done.degraded) {
    // Stored and safe on the server, but short of the replicas asked for: a warning and its own exit status.
    const wanted = done.replicas + 1
    out.stderr.write(`deposito: DEGRADED: ${printableName(done.name)} has ${done.copies} of ${wanted} copies for now; the server will restore the rest\n`)
    process.exitCode = ERROR_CODES.DEGRADED.exit
  }
}

/** The stored version of `name`, if it is this very file: same size, then (only then) same sha256. */
async function alreadyStored(client: DepositoClient, name: string, file: string, size: number): Promise<FileInfo | undefined> {
  const stored = (await client.list()).find((f) => f.name === name)
  if (!stored || stored.size !== size) return undefined
  const hasher = createHash('sha256')
  await pipeline(createReadStream(file), hasher)
  return hasher.digest('hex') === stored.sha256 ? stored : undefined
}

export async function replicasCommand(client: DepositoClient, out: Output, name: string, replicas: number): Promise<DepositResult> {
  const done = await client.replicas(name, replicas)
  report(out, done, `${printableName(done.name)}: ${done.replicas} replicas asked, ${copiesText(done)}\n`)
  return done
}

/** `retrieve NAME` with no -o writes to the name's last path segment, refusing anything that is not a plain name. */
export function defaultOutputPath(name: string): string {
  const last = name.split(/[\\/]/).pop() ?? ''
  // eslint-disable-next-line no-control-regex
  if (last === '' || last === '.' || last === '..' || /[\u0000-\u001f\u007f]/.test(last)) {
    throw new DepositoError('USAGE', `cannot make a local file name from ${JSON.stringify(name)}; choose one with -o PATH`)
  }
  return last
}

export async function retrieveCommand(client: DepositoClient, out: Output, name: string, options: { output?: string } & RetryFlags): Promise<FileInfo> {
  const target = options.output ?? defaultOutputPath(name)
  const progress = createProgress(out.progress, 'retrieve', out.stderr)
  let started = false
  const onBytes = (bytes: number, info: FileInfo) => {
    if (!started) progress.start(info.size)
    started = true
    progress.update(bytes)
  }
  const policy = retryPolicy(options)
  let lostAt = 0
  const track = (bytes: number, info: FileInfo) => {
    lostAt = bytes
    onBytes(bytes, info)
  }
  let tries = 1
  const onResume = (from: number) => {
    out.stderr.write(resumedLine({ lostAt, from, attempt: ++tries, of: policy.retries + 1 }))
  }
  try {
    if (target === '-') {
      const info = await retrieveToStream(client, name, out.stdout, track, policy, onResume)
      servedBy(client, out)
      return info
    }
    const path = await resolveTarget(target, name)
    // A server that finds its copy bad cuts the transfer and repairs it from a mirror: one more try then gets
    // good bytes. (Not for -o -, whose bytes are already out.)
    for (let attempt = 1; ; attempt++) {
      try {
        const info = await retrieveToFile(client, name, path, track, policy, onResume)
        progress.stop()
        result(out, { ...info, path, servedBy: servedBy(client, out) }, `retrieved ${printableName(info.name)} → ${path} (${formatBytes(info.size)}, sha256 verified)\n`)
        return info
      } catch (err) {
        if (attempt >= 2 || (err as DepositoError).code !== 'HASH_MISMATCH') throw err
      }
    }
  } finally {
    progress.stop()
  }
}

async function resolveTarget(target: string, name: string): Promise<string> {
  const info = await stat(target).catch(() => undefined)
  return info?.isDirectory() ? join(target, defaultOutputPath(name)) : target
}

export async function listCommand(client: DepositoClient, out: Output): Promise<FileInfo[]> {
  const files = await client.list()
  const by = servedBy(client, out)
  const rows = files.map((f) => [printableName(f.name), formatBytes(f.size), String(f.replicas), formatDate(f.storedAt), f.sha256.slice(0, 12)])
  const human = files.length === 0 ? 'no files yet\n' : formatTable(['NAME', 'SIZE', 'REPLICAS', 'STORED', 'SHA256'], rows, [1, 2])
  // Each entry says where it came from: the document stays the array scripts already read.
  result(out, files.map((f) => ({ ...f, servedBy: by })), human)
  return files
}

export async function deleteCommand(client: DepositoClient, out: Output, name: string): Promise<FileInfo> {
  const info = await client.delete(name)
  result(out, info, `deleted ${printableName(info.name)}\n`)
  return info
}

export async function idCommand(client: DepositoClient, out: Output): Promise<string> {
  const id = await client.hello()
  result(out, { id, server: client.server }, `${id}\n`)
  return id
}

export async function statusCommand(client: DepositoClient, out: Output): Promise<void> {
  const { nodes, underReplicated } = await client.status()
  const size = (n?: number) => (n === undefined ? '?' : formatBytes(n))
  // Node ids shortened like git's hashes: enough to tell nodes apart at a glance; --json has them whole.
  const rows = nodes.map((n) => [n.address, n.id?.slice(0, 8) ?? '?', n.role, n.up ? 'up' : 'DOWN', n.files === undefined ? '?' : String(n.files), size(n.bytes), size(n.free)])
  const table = formatTable(['NODE', 'ID', 'ROLE', 'STATE', 'FILES', 'STORED', 'FREE'], rows, [4, 5, 6])
  const summary = underReplicated === 0 ? 'every file has its copies\n' : `${underReplicated} file(s) under-replicated\n`
  // The answering node's certificate: what a client pins, read here on the node's own machine to check a pin.
  const fingerprints = nodes.filter((n) => n.fingerprint !== undefined).map((n) => `certificate of ${n.address}: ${n.fingerprint}\n`)
  result(out, { nodes, underReplicated, servedBy: servedBy(client, out) }, table + summary + fingerprints.join(''))
}
