import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { ERROR_CODES, type ErrorCode } from '../../lib/protocol/errors.js'
import { ONE_LINE, ROOT, runClient, startServerProcess } from '../helpers/bins.js'

/**
 * Scripts rely on three promises: with --json every command prints one JSON document (errors too), with
 * --quiet nothing on success, and the exit status is the one the README's table gives the error's code.
 */
t.test('--json: one document for every command, success or failure; --quiet: silence on success', async (t) => {
  const dir = t.testdir({ 'notes.txt': 'hello, depot\n' })
  const server = await startServerProcess(t, { dataDir: join(dir, 'data') })
  const home = join(dir, 'home')
  const opts = { home, port: server.port, cwd: dir }
  const json = async (args: string[], status = 0) => {
    const r = await runClient(['--json', ...args], opts)
    t.equal(r.code, status, `${args.join(' ')} exits ${status}`)
    t.match(r.stdout.toString(), ONE_LINE, `${args[0]}: one line on stdout`)
    t.equal(r.stderr, '', `${args[0]}: nothing on stderr`)
    return JSON.parse(r.stdout.toString()) as Record<string, unknown>
  }

  t.match(await json(['deposit', join(dir, 'notes.txt')]), { name: 'notes.txt', size: 13, sha256: /^[0-9a-f]{64}$/, copies: 1, degraded: false })
  t.match(await json(['list']), [{ name: 'notes.txt', size: 13, replicas: 0 }])
  t.match(await json(['retrieve', 'notes.txt', '-o', join(dir, 'back.txt')]), { name: 'notes.txt', path: join(dir, 'back.txt') })
  t.match(await json(['replicas', 'notes.txt', '0']), { name: 'notes.txt', replicas: 0, copies: 1 })
  t.match(await json(['status']), { nodes: [{ role: 'primary', up: true }], underReplicated: 0 })
  t.match(await json(['id']), { id: /^[0-9a-f-]{36}$/, server: `127.0.0.1:${server.port}` })
  t.match(await json(['delete', 'notes.txt']), { name: 'notes.txt' })

  const failures: [string[], ErrorCode][] = [
    [['deposit', join(dir, 'missing.txt')], 'IO_ERROR'],
    [['retrieve', 'notes.txt', '-o', join(dir, 'x')], 'NOT_FOUND'],
    [['replicas', 'notes.txt', '1'], 'NOT_FOUND'],
    [['delete', 'notes.txt'], 'NOT_FOUND'],
    [['--server', '127.0.0.1:1', 'list'], 'UNREACHABLE'],
    [['--server', '127.0.0.1:1', 'status'], 'UNREACHABLE'],
    [['--server', '127.0.0.1:1', 'id'], 'UNREACHABLE'],
    [[], 'USAGE'],
    [['list', '--bogus'], 'USAGE'],
  ]
  for (const [args, code] of failures) {
    const doc = await json(args, ERROR_CODES[code].exit)
    t.match(doc, { error: { code, message: /\S/ } }, `${args.join(' ') || '(no command)'}: {error:{code,message}}`)
  }

  for (const args of [['deposit', join(dir, 'notes.txt')], ['list'], ['retrieve', 'notes.txt', '-o', join(dir, 'q.txt')], ['replicas', 'notes.txt', '0'], ['status'], ['id'], ['delete', 'notes.txt']]) {
    const r = await runClient(['--quiet', ...args], opts)
    t.equal(r.code, 0, `--quiet ${args[0]} succeeds`)
    t.equal(r.stdout.length, 0, `--quiet ${args[0]}: nothing on stdout`)
    t.equal(r.stderr, '', 'nor on stderr')
  }
  t.equal(await readFile(join(dir, 'q.txt'), 'utf8'), 'hello, depot\n', '--quiet still does the work')
})

t.test('every error code has its exit status in the README and PROTOCOL.md tables', async (t) => {
  const readme = await readFile(join(ROOT, 'README.md'), 'utf8')
  const protocol = await readFile(join(ROOT, 'PROTOCOL.md'), 'utf8')
  for (const [code, { exit }] of Object.entries(ERROR_CODES)) {
    t.match(readme, new RegExp(`^\\| ${exit} \\| \`${code}\` \\|`, 'm'), `README: ${exit} ${code}`)
    t.match(protocol, new RegExp(`^\\| \`${code}\` \\| ${exit} \\|`, 'm'), `PROTOCOL.md: ${code} ${exit}`)
  }
  t.match(readme, /^\| 130 \| – \|/m, 'README: Ctrl-C')
})

t.test('each command\'s --help: usage, the global options, examples', async (t) => {
  // Through the bin, like the rest: lib/cli/client.ts stays out of the in-process coverage (its main() is only
  // ever run as a process).
  const home = join(t.testdir(), 'home')
  for (const command of ['deposit', 'retrieve', 'list', 'delete', 'replicas', 'status', 'id']) {
    const r = await runClient([command, '--help'], { home })
    t.equal(r.code, 0, `${command} --help exits 0`)
    const help = r.stdout.toString()
    t.match(help, new RegExp(`^Usage: deposito-client ${command} `), `${command} --help starts with its usage`)
    t.match(help, /Global Options:[^]*--json/, 'lists the global options')
    t.match(help, new RegExp(`Examples:\\n  \\$ (deposito-client|tar c photos \\|)[^\\n]* ${command}\\b`), 'and shows examples of it')
  }
})
