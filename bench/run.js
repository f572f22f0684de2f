// `npm run bench`: deposito's deposit and retrieve throughput and server memory, against a bare-socket baseline
// measured in the same run on the same machine (absolute MB/s say more about the disk than about deposito).
//
//   BENCH_SIZE_MB  size of the test file in MiB (default 1024)
//   BENCH_RUNS     measurements of each kind; the median is reported (default 3)
//
// Everything runs on loopback, under one temp dir that is removed at the end. Exit status is 0 whatever the
// figures are (this is a report); it is 1 only when something failed to run.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { bareDeposit, bareRetrieve } from './baseline.js'
import { clientStartup, depositoDeposit, depositoRetrieve, issueId } from './deposito.js'
import { NODES, bareReplicated, depositoReplicated } from './replicated.js'
import { rehashFigure } from './rehash.js'
import { children, cpuSnapshot, generateFile, median, othersShare, positiveInt, sha256File } from './util.js'

const TARGET_RATIO = 0.7
const TARGET_RSS = 100e6 // bytes; "100 MB"
const TARGET_REPLICATED_RATIO = 1.3 // deposito time / baseline time, at most
const TARGET_TLS_RATIO = 1.4 // the same deposit with TLS on every link / in plaintext, at most
const MB = 1e6 // every figure printed is in decimal MB (10^6 bytes)

async function main(work) {
  const sizeMiB = positiveInt('BENCH_SIZE_MB', 1024)
  const runs = positiveInt('BENCH_RUNS', 3)
  const size = sizeMiB * 2 ** 20
  const dirs = { bare: join(work, 'bare'), deposito: join(work, 'deposito'), home: join(work, 'home') }
  for (const d of Object.values(dirs)) await mkdir(d)
  const file = join(work, 'source.bin')

  const cpuAtStart = await cpuSnapshot()
  log(`generating ${sizeMiB} MiB test file...`)
  const sha = await generateFile(file, sizeMiB)
  const { id } = await issueId(dirs.deposito, dirs.home)
  const startup = median([await clientStartup(), await clientStartup(), await clientStartup()])

  // Each kind of step, as a function of the run index; retrieves verify (untimed) and drop their copy, so
  // disk usage stays flat and no dirty copy waits to be written back during a later step.
  const name = 'bench.bin'
  const steps = {
    deposit: {
      bare: () => bareDeposit(file, size, dirs.bare),
      tuned: () => bareDeposit(file, size, dirs.bare, { tuned: true }),
      deposito: () => depositoDeposit(file, name, dirs.deposito, dirs.home, id),
    },
    retrieve: {
      bare: (i) => verified(join(work, `bare-out-${i}`), (out) => bareRetrieve(out, dirs.bare)),
      deposito: (i) => verified(join(work, `deposito-out-${i}`), (out) => depositoRetrieve(name, out, dirs.deposito, dirs.home, id)),
    },
  }
  async function verified(out, fn) {
    const result = await fn(out)
    const got = await sha256File(out)
    if (got !== sha) throw new Error(`retrieved copy ${out} hashes to ${got}, expected ${sha}`)
    await rm(out)
    return result
  }

  const results = { deposit: { bare: [], tuned: [], deposito: [] }, retrieve: { bare: [], deposito: [] } }
  for (let i = 0; i < runs; i++) {
    // Alternate who goes first, so drift (a warming page cache, a busier disk) does not favour one side.
    const order = i % 2 === 0 ? ['bare', 'deposito'] : ['deposito', 'bare']
    for (const op of ['deposit', 'retrieve']) {
      for (const who of op === 'retrieve' ? order : i % 2 === 0 ? [...order, 'tuned'] : ['tuned', ...order]) {
        const r = await steps[op][who](i)
        results[op][who].push(r)
        log(`run ${i + 1}/${runs} ${op.padEnd(8)} ${who.padEnd(8)} ${fmt(size / MB / r.seconds)} MB/s  ${r.seconds.toFixed(2)} s  server CPU ${r.cpu.toFixed(2)} s  RSS ${fmt(r.rss / MB)} MB`)
      }
    }
  }
  const others = othersShare(cpuAtStart, await cpuSnapshot())
  report({ sizeMiB, runs, size, startup, others, results })
  await replicated({ work, file, size, sizeMiB, runs, home: dirs.home })
  const rehash = await rehashFigure()
  console.log(
    `resume: re-hashing the prefix of a ${(rehash.size / 2 ** 30).toFixed(2)} GiB partial took ${rehash.seconds.toFixed(2)} s ` +
      `(${fmt(rehash.size / MB / rehash.seconds)} MB/s; sha256 of the same bytes in memory: ${rehash.inMemory.toFixed(2)} s)`,
  )
}

/**
 * The replicated deposit (bench/replicated.js): --replicas 2 on a local three-node cluster against three bare
 * sinks, the first teeing to the other two. Runs after the rest, and prints its own table below theirs.
 */
async function replicated({ work, file, size, sizeMiB, runs, home }) {
  const cpuAtStart = await cpuSnapshot()
  const secretFile = join(work, 'cluster-secret')
  await writeFile(secretFile, randomBytes(32).toString('hex') + '\n', { mode: 0o600, flag: 'wx' })
  const bareDirs = NODES.map((_, i) => join(work, `bare-r${i + 1}`))
  const steps = {
    bare: () => bareReplicated(file, size, bareDirs),
    deposito: () => depositoReplicated(file, 'bench-replicated.bin', join(work, 'cluster'), secretFile, home),
    tls: () => depositoReplicated(file, 'bench-replicated.bin', join(work, 'cluster'), secretFile, home, { tls: true }),
  }
  const results = { bare: [], deposito: [], tls: [] }
  for (let i = 0; i < runs; i++) {
    const order = i % 2 === 0 ? ['bare', 'deposito', 'tls'] : ['tls', 'deposito', 'bare']
    for (const who of order) {
      const r = await steps[who]()
      results[who].push(r)
      log(`run ${i + 1}/${runs} replicated ${who.padEnd(8)} ${fmt(size / MB / r.seconds)} MB/s  ${r.seconds.toFixed(2)} s  RSS ${r.rss.map((b) => fmt(b / MB)).join(' / ')} MB`)
    }
  }
  const others = othersShare(cpuAtStart, await cpuSnapshot())
  // Free the six copies now rather than with the work dir.
  await rm(join(work, 'cluster'), { recursive: true, force: true })
  for (const d of bareDirs) await rm(d, { recursive: true, force: true })

  const time = (who) => median(results[who].map((r) => r.seconds))
  const rss = (who, n) => Math.max(...results[who].map((r) => r.rss[n]))
  const ratio = time('deposito') / time('bare')
  const row = (cells) => cells.map((c, i) => (i === 0 ? c.padEnd(9) : c.padStart(i < 3 ? 10 : 17))).join('')
  const lines = [
    '',
    `replicated deposit: ${sizeMiB} MiB file, --replicas 2 on a local 3-node cluster (primary + 2 --join mirrors),`,
    `median of ${runs} runs. Baseline: one bare socket to a sink that fsyncs and tees to two more fsyncing sinks,`,
    'no protocol, no hashing. deposito time is bin/client wall time, process start included. RSS: each node\'s peak',
    '(VmHWM), highest of the runs.',
    '',
    row(['', 'time s', 'MB/s', ...NODES.map((n) => `${n} RSS MB`)]),
  ]
  const label = { bare: 'baseline', deposito: 'deposito', tls: 'TLS' }
  for (const who of ['bare', 'deposito', 'tls']) {
    lines.push(row([label[who], time(who).toFixed(2), fmt(size / MB / time(who)), ...NODES.map((_, n) => fmt(rss(who, n) / MB))]))
  }
  lines.push('')
  for (const who of ['bare', 'deposito', 'tls']) {
    lines.push(`  replicated ${label[who]} runs, s: ${results[who].map((r) => r.seconds.toFixed(2)).join(', ')}`)
  }
  lines.push('  (TLS: deposito with --tls on the client and every node: TLS 1.3 to the primary, TLS-PSK to the mirrors)')
  lines.push(`  other processes used ${(others * 100).toFixed(0)}% of the machine's CPU time during the replicated bench`)
  if (others > 0.1) lines.push('  WARNING: the machine was busy with other work; wall-time figures (time, ratio) are noisy')
  lines.push('')
  const verdict = (ok) => (ok ? 'PASS' : 'FAIL')
  lines.push(`${verdict(ratio <= TARGET_REPLICATED_RATIO)}  replicated deposit time ${ratio.toFixed(2)} × baseline (target ≤ ${TARGET_REPLICATED_RATIO.toFixed(2)})`)
  const tlsRatio = time('tls') / time('deposito')
  lines.push(`${verdict(tlsRatio <= TARGET_TLS_RATIO)}  replicated deposit with TLS on every link ${tlsRatio.toFixed(2)} × plaintext (target ≤ ${TARGET_TLS_RATIO.toFixed(2)})`)
  NODES.forEach((node, n) => {
    const peak = Math.max(rss('deposito', n), rss('tls', n))
    lines.push(`${verdict(peak < TARGET_RSS)}  ${node} peak RSS during replicated deposit ${fmt(peak / MB)} MB (target < ${TARGET_RSS / MB} MB)`)
  })
  process.stdout.write(lines.join('\n') + '\n')
}

function report({ sizeMiB, runs, size, startup, others, results }) {
  const row = (cells) => cells.map((c, i) => (i === 0 ? c.padEnd(9) : c.padStart(i < 3 ? 15 : i === 3 ? 7 : 13))).join('')
  const lines = [
    '',
    `deposito bench: ${sizeMiB} MiB file (${fmt(size / MB)} MB), median of ${runs} runs, loopback, node ${process.version}, ${cpus().length} CPUs`,
    'MB = 10^6 bytes. RSS: server peak (VmHWM), highest of the runs. CPU: server user+sys seconds for the transfer,',
    'median. deposito times are bin/client wall times, process start included; the baseline\'s are in-process.',
    '',
    row(['', 'baseline MB/s', 'deposito MB/s', 'ratio', 'base RSS MB', 'depo RSS MB', 'base CPU s', 'depo CPU s']),
  ]
  const summary = {}
  for (const op of ['deposit', 'retrieve']) {
    const rate = (who) => size / MB / median(results[op][who].map((r) => r.seconds))
    const rss = (who) => Math.max(...results[op][who].map((r) => r.rss))
    const cpu = (who) => median(results[op][who].map((r) => r.cpu))
    summary[op] = { ratio: rate('deposito') / rate('bare'), rss: rss('deposito') }
    const cells = [rate('bare'), rate('deposito'), summary[op].ratio, rss('bare') / MB, rss('deposito') / MB, cpu('bare'), cpu('deposito')]
    lines.push(row([op, ...cells.map((n, i) => (i === 2 ? n.toFixed(2) : i >= 5 ? n.toFixed(2) : fmt(n)))]))
  }
  lines.push('')
  // The spread shows how far to trust a median: on a shared VM one slow run is common.
  for (const op of ['deposit', 'retrieve']) {
    for (const who of ['bare', 'deposito']) {
      const all = results[op][who].map((r) => fmt(size / MB / r.seconds)).join(', ')
      lines.push(`  ${op.padEnd(8)} ${who === 'bare' ? 'baseline' : 'deposito'} runs, MB/s: ${all}`)
    }
  }
  // Not a target: the same disk strategy as deposito's store, to show what protocol and hashing alone cost.
  const rateOf = (who) => size / MB / median(results.deposit[who].map((r) => r.seconds))
  lines.push(`  deposit  tuned baseline runs, MB/s: ${results.deposit.tuned.map((r) => fmt(size / MB / r.seconds)).join(', ')}`)
  lines.push(`    (a bare sink writing like deposito's store: batched writes, fdatasync every 16 MiB as it goes)`)
  lines.push(`    deposito deposit ÷ tuned baseline: ${(rateOf('deposito') / rateOf('tuned')).toFixed(2)} (for reference; the target is against the plain baseline)`)
  lines.push(`  bin/client start-up alone (--help, median of 3): ${(startup * 1000).toFixed(0)} ms`)
  lines.push(`  other processes used ${(others * 100).toFixed(0)}% of the machine's CPU time during the bench`)
  if (others > 0.1) lines.push('  WARNING: the machine was busy with other work; wall-time figures (MB/s, ratio) are noisy')
  lines.push('')
  const verdict = (ok) => (ok ? 'PASS' : 'FAIL')
  const { ratio } = summary.deposit
  lines.push(`${verdict(ratio >= TARGET_RATIO)}  deposit throughput ${ratio.toFixed(2)} × baseline (target ≥ ${TARGET_RATIO.toFixed(2)})`)
  for (const op of ['deposit', 'retrieve']) {
    const { rss } = summary[op]
    lines.push(`${verdict(rss < TARGET_RSS)}  server peak RSS during ${op} ${fmt(rss / MB)} MB (target < ${TARGET_RSS / MB} MB)`)
  }
  process.stdout.write(lines.join('\n') + '\n')
}

function fmt(n) {
  return n.toFixed(1)
}

function log(msg) {
  process.stderr.write(`bench: ${msg}\n`)
}

const work = await mkdtemp(join(tmpdir(), 'deposito-bench-'))
let failed = false
// Ctrl-C: still stop the servers and remove the work dir (children get the SIGINT too, this is for the rest).
process.once('SIGINT', () => {
  failed = true
  for (const c of children) c.kill('SIGKILL')
  rm(work, { recursive: true, force: true }).finally(() => process.exit(130))
})
try {
  await main(work)
} catch (err) {
  failed = true
  process.stderr.write(`bench: FAILED: ${err.stack ?? err}\n`)
} finally {
  for (const c of children) c.kill('SIGKILL')
  await Promise.allSettled([...children].map((c) => c.exited))
  await rm(work, { recursive: true, force: true })
}
process.exitCode = failed ? 1 : 0
