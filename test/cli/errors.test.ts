import { mkdir, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { EXIT, ONE_LINE, runClient, startServerProcess, type ErrorCode } from '../helpers/bins.js'

/**
 * Every failure leaves bin/client as one stderr line `deposito: CODE: message` (or, with --json, one JSON
 * document on stdout) and the exit status PROTOCOL.md gives that code.
 */
t.test('client failures: exit status, one stderr line, --json', async (t) => {
  const dir = t.testdir()
  const server = await startServerProcess(t, { dataDir: join(dir, 'data') })
  const { port } = server
  const home = join(dir, 'home')
  const src = join(dir, 'small.txt')
  await writeFile(src, 'hello, depot\n')
  const outDir = join(dir, 'out')
  await mkdir(outDir)

  const expectFailure = async (t: Test, args: string[], code: ErrorCode, extra: Parameters<typeof runClient>[1] = { home, port }) => {
    const r = await runClient(args, extra)
    t.equal(r.code, EXIT[code], `${args.join(' ')} exits ${EXIT[code]} (${code})`)
    t.match(r.stderr, ONE_LINE, 'one line on stderr')
    t.match(r.stderr, new RegExp(`^deposito: ${code}: `), `it names ${code}`)
    t.equal(r.stdout.length, 0, 'nothing on stdout')
    return r
  }

  await t.test('retrieve of a name never deposited: NOT_FOUND, and no file left', async (t) => {
    await expectFailure(t, ['retrieve', 'missing.txt', '-o', join(outDir, 'missing.txt')], 'NOT_FOUND')
    await expectFailure(t, ['retrieve', 'missing.txt', '-o', outDir], 'NOT_FOUND')
    t.same(await readdir(outDir), [], 'neither the target nor a .partial temp file is left')
  })

  await t.test('no server at the address: UNREACHABLE, with a hint', async (t) => {
    const r = await expectFailure(t, ['--server', '127.0.0.1:1', 'list'], 'UNREACHABLE')
    t.match(r.stderr, /npm start/, 'tells how to start a server')
    t.match(r.stderr, /127\.0\.0\.1:1\b/, 'and names the address it tried')
  })

  await t.test('command-line mistakes: USAGE', async (t) => {
    for (const args of [['--bogus', 'list'], ['frobnicate']]) {
      const r = await runClient(args, { home, port })
      t.equal(r.code, EXIT.USAGE, `${args.join(' ')} exits 2`)
      t.match(r.stderr, /^deposito: USAGE: /, 'one USAGE line, like every failure')
      t.equal(r.stdout.length, 0)
    }
    const bad = await runClient(['--bogus', 'list'], { home, port })
    t.match(bad.stderr, /--bogus/, 'the unknown flag is named')
    await expectFailure(t, ['--server', 'nowhere:99999', 'list'], 'USAGE')
  })

  await t.test(
    'command-line mistakes caught by a subcommand: USAGE',
    async (t) => {
      for (const args of [['list', '--bogus'], ['deposit'], ['deposit', src, '--replicas', 'two'], ['retrieve']]) {
        const r = await runClient(args, { home, port })
        t.equal(r.code, EXIT.USAGE, `${args.join(' ')} exits 2`)
        t.match(r.stderr, /^deposito: USAGE: /, 'one USAGE line, like every failure')
      }
    },
  )

  await t.test('deposit - without --name: USAGE', async (t) => {
    const r = await expectFailure(t, ['deposit', '-'], 'USAGE', { home, port, input: Buffer.from('piped bytes') })
    t.match(r.stderr, /--name/)
  })

  await t.test('local files that cannot be read: IO_ERROR', async (t) => {
    const r = await expectFailure(t, ['deposit', join(dir, 'nonexistent')], 'IO_ERROR')
    t.match(r.stderr, /nonexistent/, 'names the path')
    await expectFailure(t, ['deposit', outDir], 'IO_ERROR')
  })

  await t.test('more replicas than a lone node has mirrors: NO_REPLICAS, nothing stored', async (t) => {
    await expectFailure(t, ['deposit', src, '--replicas', '3'], 'NO_REPLICAS')
    const list = await runClient(['list', '--json'], { home, port })
    t.equal(list.code, 0)
    t.same(JSON.parse(list.stdout.toString()), [], 'the refused deposit left no entry')
    t.same(await readdir(join(dir, 'data', 'tmp')), [], 'and no temp file')
  })

  await t.test('--json: the error as one JSON document on stdout, same exit status', async (t) => {
    const cases: [string[], ErrorCode][] = [
      [['--json', 'retrieve', 'missing.txt', '-o', join(outDir, 'm')], 'NOT_FOUND'],
      [['retrieve', 'missing.txt', '-o', join(outDir, 'm'), '--json'], 'NOT_FOUND'],
      [['--json', 'deposit', src, '--replicas', '3'], 'NO_REPLICAS'],
      [['--json', '--server', '127.0.0.1:1', 'list'], 'UNREACHABLE'],
      [['--json', 'deposit', join(dir, 'nonexistent')], 'IO_ERROR'],
      [['--json', 'deposit', '-'], 'USAGE'],
    ]
    for (const [args, code] of cases) {
      const r = await runClient(args, { home, port })
      t.equal(r.code, EXIT[code], `${args.join(' ')} exits ${EXIT[code]}`)
      const text = r.stdout.toString()
      t.match(text, ONE_LINE, 'one line on stdout')
      const doc = JSON.parse(text) as { error: { code: string; message: string } }
      t.same(Object.keys(doc), ['error'])
      t.equal(doc.error.code, code, `error.code is ${code}`)
      t.type(doc.error.message, 'string')
      t.ok(doc.error.message.length > 0, 'with a message')
      t.equal(r.stderr, '', 'and nothing on stderr')
    }
  })

  await t.test('--json on a command-line mistake', async (t) => {
    const r = await runClient(['--json', '--bogus', 'list'], { home, port })
    t.equal(r.code, EXIT.USAGE)
    const doc = JSON.parse(r.stdout.toString() || 'null') as { error?: { code?: string } } | null
    t.equal(doc?.error?.code, 'USAGE', '--json promises "one JSON document on stdout (errors too)"')
  })

  await t.test('--help documents the exit statuses', async (t) => {
    const r = await runClient(['--help'], { home, port })
    t.equal(r.code, 0, '--help exits 0')
    const help = r.stdout.toString()
    t.match(help, /Exit status/)
    for (const [code, exit] of Object.entries(EXIT)) {
      if (code === 'OK') continue
      t.match(help, new RegExp(`^\\s*${exit}\\s+${code}\\b`, 'm'), `${exit} ${code} is listed`)
    }
    t.equal(r.stderr, '')
  })
})
