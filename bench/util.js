// Small helpers shared by the benchmark modules: the test file, hashing, process bookkeeping, statistics.
import { spawn, spawnSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { open, readFile } from 'node:fs/promises'
import { pipeline } from 'node:stream/promises'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

export const MiB = 1 << 20

/**
 * Writes `mib` MiB of incompressible bytes and returns their sha256. One random 1 MiB block is reused with its
 * index stamped into its first 8 bytes, so no two blocks are equal (nothing below us can dedupe or compress them)
 * yet we pay for randomBytes only once. Each write is awaited before the block is changed again, so only one
 * block is ever in memory and no write can see a half-stamped buffer.
 */
export async function generateFile(path, mib) {
  const block = randomBytes(MiB)
  const hash = createHash('sha256')
  const handle = await open(path, 'wx')
  try {
    for (let i = 0; i < mib; i++) {
      block.writeBigUInt64LE(BigInt(i), 0)
      hash.update(block)
      await handle.write(block, 0, MiB)
    }
    // Flushed now so its writeback does not compete with the first timed run.
    await handle.sync()
  } finally {
    await handle.close()
  }
  return hash.digest('hex')
}

/** sha256 of a file, streamed: the retrieved copies are as large as the source and must not be read whole. */
export async function sha256File(path) {
  const hash = createHash('sha256')
  await pipeline(createReadStream(path, { highWaterMark: MiB }), hash)
  return hash.digest('hex')
}

/**
 * Writes every dirty page to disk before a timed step, so one step's leftovers (a retrieved copy the OS has not
 * written back yet) do not slow the next step's fsync and get blamed on it.
 */
export function settleDisk() {
  const r = spawnSync('sync', { stdio: 'ignore' })
  if (r.error) throw r.error
}

/** Peak resident set (VmHWM) of a live process, in bytes. Read just before stopping it: /proc forgets at exit. */
export async function peakRss(pid) {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const m = /^VmHWM:\s+(\d+)\s+kB$/m.exec(status)
  if (!m) throw new Error(`no VmHWM in /proc/${pid}/status`)
  return Number(m[1]) * 1024
}

/**
 * CPU seconds (user + system, all threads) a live process has used so far. USER_HZ is 100 on every Linux we run
 * on. Read twice around a transfer, it gives the server's CPU cost of the transfer alone, a figure far less
 * sensitive than wall time to whatever else the machine is running.
 */
export async function cpuSeconds(pid) {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100
}

/**
 * Jiffies the whole machine spent busy (and in all), and those this process and its reaped children used. Two
 * snapshots give the share of the CPUs that *other* processes took during the bench: on a shared 2-CPU VM that
 * is what makes wall times noisy, so the report says it instead of leaving it to guesswork.
 */
export async function cpuSnapshot() {
  const [user, nice, system, idle, iowait, irq, softirq, steal] = (await readFile('/proc/stat', 'utf8'))
    .split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number)
  const self = await readFile('/proc/self/stat', 'utf8')
  const f = self.slice(self.lastIndexOf(')') + 2).split(' ').map(Number)
  return {
    busy: user + nice + system + irq + softirq + steal,
    total: user + nice + system + idle + iowait + irq + softirq + steal,
    ours: f[11] + f[12] + f[13] + f[14], // utime, stime, cutime, cstime
  }
}

export function othersShare(a, b) {
  return Math.max(0, b.busy - a.busy - (b.ours - a.ours)) / (b.total - a.total)
}

/** Children still running, so a failure anywhere can still stop them all before the bench exits. */
export const children = new Set()

/** spawn() that tracks the child and turns a failure to start (ENOENT...) into a rejected `exited`. */
export function track(child) {
  children.add(child)
  child.exited = new Promise((resolve, reject) => {
    child.once('error', reject)
    child.once('exit', (code, signal) => resolve({ code, signal }))
  }).finally(() => children.delete(child))
  child.exited.catch(() => {})
  return child
}

/**
 * Runs one measured step against a live server process: `fn(measuring)` does the work and calls `measuring()`
 * once its untimed preparation is over, so the CPU figure added to its result is the transfer's alone; the peak
 * RSS is read last, while /proc still has it. The server is then stopped gracefully. If the step fails, its error
 * is the one worth reporting: the server is killed without a word.
 */
export async function measured(child, what, fn) {
  let result
  try {
    let cpu0 = await cpuSeconds(child.pid)
    const measuring = async () => {
      cpu0 = await cpuSeconds(child.pid)
    }
    result = await fn(measuring)
    result = { ...result, cpu: (await cpuSeconds(child.pid)) - cpu0, rss: await peakRss(child.pid) }
  } catch (err) {
    child.kill('SIGKILL')
    await child.exited.catch(() => {})
    throw err
  }
  await stop(child, what)
  return result
}

/** SIGTERM, then wait for the exit; a graceful stop is the normal path, so anything but exit 0 is an error. */
export async function stop(child, what) {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
  const { code, signal } = await child.exited.finally(() => clearTimeout(timer))
  if (code !== 0) throw new Error(`${what} exited with ${signal ?? `code ${code}`} when stopped${tail(child)}`)
}

/** Runs a command to completion, timed from spawn to exit; rejects unless it exits 0. */
export async function timedRun(cmd, args, options = {}) {
  const t0 = performance.now()
  const child = track(spawn(cmd, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] }))
  const out = collect(child.stdout)
  const err = collect(child.stderr)
  const { code, signal } = await child.exited
  const seconds = (performance.now() - t0) / 1000
  const stdout = await out
  const stderr = await err
  if (code !== 0) throw new Error(`${[cmd, ...args].join(' ')} failed (${signal ?? `exit ${code}`}): ${stderr.trim() || stdout.trim()}`)
  return { seconds, stdout, stderr }
}

async function collect(stream) {
  let text = ''
  stream.setEncoding('utf8')
  for await (const s of stream) text += s
  return text
}

/** The last lines a child said on stderr, if the caller kept them (`child.lastWords`), for error messages. */
export function tail(child) {
  return child.lastWords?.length ? `:\n  ${child.lastWords.join('\n  ')}` : ''
}

export function median(values) {
  const s = [...values].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2
}

export function positiveInt(name, fallback) {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  if (!/^\d+$/.test(raw) || Number(raw) < 1) throw new Error(`${name} must be a whole number ≥ 1, not ${JSON.stringify(raw)}`)
  return Number(raw)
}


const SERVER = fileURLToPath(new URL('../bin/server', import.meta.url))

/**
 * A bin/server whose stderr is read for its whole life (a full pipe would block its synchronous logger). Resolves
 * with the port of its "listening" line; `child.messages` counts the log messages we wait on.
 */
export function startServer(args) {
  const child = track(spawn(SERVER, ['--port', '0', '--log-level', 'info', ...args], { stdio: ['ignore', 'ignore', 'pipe'] }))
  child.lastWords = []
  child.messages = new Map()
  child.waiters = []
  const port = new Promise((resolve, reject) => {
    createInterface({ input: child.stderr }).on('line', (line) => {
      let entry
      try {
        entry = JSON.parse(line)
      } catch {
        entry = { level: 50, msg: line }
      }
      child.messages.set(entry.msg, (child.messages.get(entry.msg) ?? 0) + 1)
      for (const w of child.waiters) w()
      if (entry.msg === 'listening') resolve(entry.address.port)
      else if (entry.level >= 40) child.lastWords.push(line)
    })
    child.exited.then(({ code, signal }) => reject(new Error(`deposito server exited early (${signal ?? code})${tail(child)}`)), reject)
  })
  port.catch(() => {})
  child.port = port
  return child
}
