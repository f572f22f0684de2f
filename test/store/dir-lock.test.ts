import t, { type Test } from 'tap'
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import fsExt from 'fs-ext'
import { lockDataDir } from '../../lib/store/dir-lock.js'

const HOLDER = fileURLToPath(new URL('../helpers/lock-holder.mjs', import.meta.url))
const COMPILED = fileURLToPath(new URL('../../dist/store/dir-lock.js', import.meta.url))
const RACERS = 20

if (!existsSync(COMPILED)) t.fail(`${COMPILED} is missing: run npx tsc -p . first`)

const inUse = (dir: string, pid: number) => `data directory ${dir} is in use by process ${pid}; give each node its own --data`

interface Holder {
  proc: ChildProcessWithoutNullStreams
  pid: number
  /** The child's next stdout line; rejects if it exits first, with its stderr. */
  line(): Promise<string>
  /** Closes the child's stdin, which makes a holder release its lock, and resolves with its exit code. */
  finish(): Promise<number | null>
}

/** Runs test/helpers/lock-holder.mjs on `dir`; the teardown kills it if the test left it running. */
function holder(t: Test, dir: string, ...args: string[]): Holder {
  const proc = spawn(process.execPath, [HOLDER, dir, ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
  const stderr: string[] = []
  proc.stderr.setEncoding('utf8').on('data', (d: string) => stderr.push(d))
  const exited = once(proc, 'exit') as Promise<[number | null, string | null]>
  t.teardown(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL')
  })
  const lines = createInterface({ input: proc.stdout })[Symbol.asyncIterator]()
  return {
    proc,
    pid: proc.pid!,
    async line() {
      const next = await lines.next()
      if (next.done) throw new Error(`lock-holder ${proc.pid} exited early: ${stderr.join('')}`)
      return next.value
    },
    async finish() {
      proc.stdin.end()
      return (await exited)[0]
    },
  }
}

/** What another process gets when it tries `dir` now: "locked" (then released) or "CODE message". */
async function attempt(t: Test, dir: string): Promise<string> {
  const h = holder(t, dir)
  t.equal(await h.line(), 'ready')
  const result = await h.line()
  t.equal(await h.finish(), 0)
  return result
}

/** A holder that has taken the lock on `dir`. */
async function locked(t: Test, dir: string): Promise<Holder> {
  const h = holder(t, dir)
  t.equal(await h.line(), 'ready')
  t.equal(await h.line(), 'locked', `process ${h.pid} takes ${dir}`)
  return h
}

t.test('twenty processes started together over a stale lock: exactly one gets it', async (t) => {
  const dir = t.testdir()
  // A pid that surely names no process: one that has just exited (pids are not reused that fast).
  const dead = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' })
  await once(dead, 'exit')
  await writeFile(join(dir, 'lock'), `${dead.pid}\n`)

  // Every child loads first and locks only on "go", so the twenty lockDataDir calls overlap as tightly as they can.
  const racers = Array.from({ length: RACERS }, () => holder(t, dir, '--wait-go'))
  for (const racer of racers) t.equal(await racer.line(), 'ready')
  for (const racer of racers) racer.proc.stdin.write('go\n')
  const results = await Promise.all(racers.map((racer) => racer.line()))

  const winners = racers.filter((_, i) => results[i] === 'locked')
  const pids = winners.map((w) => w.pid).join(', ')
  t.equal(winners.length, 1, `exactly one of ${RACERS} holds the directory (got pids ${pids})`)
  for (const result of results.filter((r) => r !== 'locked')) {
    // The loser may read the winner's pid, the stale one, or nothing, depending on how far the winner got.
    t.match(result, /^USAGE data directory .* is in use by (process \d+|another process); give each node its own --data$/)
  }
  if (winners.length === 1) {
    t.equal(await readFile(join(dir, 'lock'), 'utf8'), `${winners[0].pid}\n`, 'the file names the winner')
  }
  t.same(await Promise.all(racers.map((racer) => racer.finish())), racers.map(() => 0))
})

t.test('a lock held by a process killed with SIGKILL is free at once', async (t) => {
  const dir = t.testdir()
  const victim = await locked(t, dir)
  const exited = once(victim.proc, 'exit')
  victim.proc.kill('SIGKILL')
  t.same(await exited, [null, 'SIGKILL'])
  t.equal(await readFile(join(dir, 'lock'), 'utf8'), `${victim.pid}\n`, 'the dead holder is still named in the file')

  const unlock = await lockDataDir(dir)
  t.equal(await readFile(join(dir, 'lock'), 'utf8'), `${process.pid}\n`, 'the kernel dropped the lock: ours now')
  await unlock()
  t.ok(existsSync(join(dir, 'lock')), 'the file stays: only the flock is released')
  t.equal(await attempt(t, dir), 'locked', 'free again')
})

t.test('a second process is refused while the first lives; the same process may reopen', async (t) => {
  const root = t.testdir()
  const dir = join(root, 'data')
  await mkdir(dir)
  const first = await locked(t, dir)
  await t.rejects(lockDataDir(dir), { code: 'USAGE', message: inUse(dir, first.pid) }, 'refused in this process')
  t.equal(await attempt(t, dir), `USAGE ${inUse(dir, first.pid)}`, 'refused in another process, naming the holder')
  await writeFile(join(dir, 'lock'), 'not a pid\n')
  await t.rejects(lockDataDir(dir), { code: 'USAGE', message: /in use by another process; give each node/ },
    'the pid in the file is diagnostics only: garbage there changes the message, not the lock')
  t.equal(await first.finish(), 0)

  // A refused attempt left nothing behind in this process: the directory, free now, is ours.
  const unlock = await lockDataDir(dir)
  const link = join(root, 'alias')
  await symlink(dir, link)
  const reopens = await Promise.all([lockDataDir(dir), lockDataDir(link)])
  for (const release of reopens) await release()
  t.equal(await attempt(t, dir), `USAGE ${inUse(dir, process.pid)}`, 'a reopen’s release leaves the first opener’s lock held')

  await unlock()
  await unlock()
  t.equal(await attempt(t, dir), 'locked', 'free again')
})

t.test('two opens racing in one process share one flock', async (t) => {
  const dir = t.testdir()
  const releases = await Promise.all([lockDataDir(dir), lockDataDir(dir)])
  t.equal(await attempt(t, dir), `USAGE ${inUse(dir, process.pid)}`)
  for (const release of releases) await release()
  t.equal(await attempt(t, dir), 'locked', 'free again')
})

t.test('a lock file that cannot be opened fails loudly, and leaves nothing held', async (t) => {
  const dir = t.testdir({ lock: {} })
  await t.rejects(lockDataDir(dir), { code: 'EISDIR' })
  await rm(join(dir, 'lock'), { recursive: true })
  const unlock = await lockDataDir(dir)
  t.equal(await readFile(join(dir, 'lock'), 'utf8'), `${process.pid}\n`, 'the failure was not remembered as a hold')
  await unlock()
})

t.test('a flock that fails for another reason is reported as it is, and leaves nothing held', async (t) => {
  const dir = t.testdir()
  // ENOLCK is what flock gives on a filesystem without lock support; the second call goes to the real flock.
  let calls = 0
  const noLocks = Object.assign(new Error('ENOLCK, No locks available'), { code: 'ENOLCK' })
  const flock = (fd: number, how: 'exnb', done: (err: NodeJS.ErrnoException | null) => void) =>
    calls++ === 0 ? done(noLocks) : fsExt.flock(fd, how, done)
  const { lockDataDir: mocked } = await t.mockImport<typeof import('../../lib/store/dir-lock.js')>(
    '../../lib/store/dir-lock.js', { 'fs-ext': { default: { ...fsExt, flock } } })
  await t.rejects(mocked(dir), { code: 'ENOLCK' }, 'not mistaken for a directory in use')
  const unlock = await mocked(dir)
  t.equal(await attempt(t, dir), `USAGE ${inUse(dir, process.pid)}`, 'the retry holds the real lock')
  await unlock()
})
