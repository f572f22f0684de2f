import { execFile } from 'node:child_process'
import { mkdir, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { CHOOSER_BIN, CLIENT_BIN, SERVER_BIN, cleanEnv, sha256File, writeRandomFile } from '../helpers/bins.js'
import { freeConsecutivePorts, startCluster } from '../helpers/cluster.js'
import { rawRequest } from '../helpers/server.js'
import { KEY, ptyUnavailable, spawnInPty } from '../helpers/terminal.js'

/**
 * The real bins on a pseudo-terminal (util-linux `script`), as a person would use them: screen in, keys out.
 * Skipped, saying why, where no `script` exists. The in-process menu tests cover the branches; these prove the
 * wiring: a TTY opens the menu, the progress bar reaches the screen, Ctrl-C leaves with 130.
 */
const skip = ptyUnavailable() ?? false
const MENU = /What would you like to do\?/

t.test('bin/client with no command: deposit with a progress bar, list, retrieve, change replicas, quit', { skip }, async (t) => {
  const dir = t.testdir()
  const cluster = await startCluster(t, { dir, mirrors: 1 })
  const work = join(dir, 'work')
  await mkdir(work)
  const hash = await writeRandomFile(join(work, 'photo.bin'), 3 << 20)
  const env = { ...cleanEnv(), DEPOSITO_HOME: join(dir, 'home'), DEPOSITO_SERVER: `127.0.0.1:${cluster.primary.port}` }
  const pty = spawnInPty(t, CLIENT_BIN, [], env, work)

  await pty.answer(/Server host \(127\.0\.0\.1\)/, KEY.enter)
  await pty.answer(new RegExp(`Server port \\(${cluster.primary.port}\\)`), KEY.enter)
  await pty.answer(/Client id to reconnect with \(blank: a new one from the server\)/, KEY.enter)
  await pty.screen.waitFor(/Your client id is [0-9a-f-]{36}/)

  await pty.answer(MENU, `1${KEY.enter}`)
  await pty.answer(/File to deposit/, `photo.bin${KEY.enter}`)
  await pty.answer(/Replicas besides the server \(1 mirror available\)/, `1${KEY.enter}`)
  const deposit = await pty.screen.waitFor(/deposited photo\.bin \(3\.00 MiB, sha256 [0-9a-f]{16}…, 2 copies\)/)
  t.match(deposit, /deposit [█░]+ [\d.]+ (B|KiB|MiB) \/ 3\.00 MiB [\d.]+ (B|KiB|MiB|GiB)\/s ETA/, 'the progress bar was on the screen')

  await pty.answer(MENU, `3${KEY.enter}`)
  const list = await pty.screen.waitFor(/NAME\s+SIZE\s+REPLICAS\s+STORED\s+SHA256\n\S[^\n]*\n/)
  t.match(list, /photo\.bin\s+3\.00 MiB\s+1\s+\S/, 'list: an aligned table with the file')

  await pty.answer(MENU, `2${KEY.enter}`)
  await pty.answer(/File to retrieve/, KEY.enter)
  await pty.answer(/Save to \(a path or a directory\) \(photo\.bin\)/, `back.bin${KEY.enter}`)
  const retrieve = await pty.screen.waitFor(/retrieved photo\.bin → back\.bin \(3\.00 MiB, sha256 verified\)/)
  t.match(retrieve, /retrieve [█░]+ /, 'a progress bar for the retrieval too')
  t.equal(await sha256File(join(work, 'back.bin')), hash, 'the retrieved file is the deposited one')

  await pty.answer(MENU, `4${KEY.enter}`)
  await pty.answer(/File whose replicas to change/, KEY.enter)
  await pty.answer(/Replicas besides the server \(1 mirror available\)/, `0${KEY.enter}`)
  await pty.screen.waitFor(/photo\.bin: 0 replicas asked, 1 copy/)

  await pty.answer(MENU, `7${KEY.enter}`)
  t.equal(await pty.exit, 0, 'quit exits 0')
  t.same((await readdir(work)).sort(), ['back.bin', 'photo.bin'], 'no temp file left beside them')
})

for (const [bin, pick] of [
  [SERVER_BIN, undefined],
  [CHOOSER_BIN, '1'],
] as const) {
  const how = pick ? 'bin/deposito, choosing "server",' : 'bin/server with no flags'
  t.test(`${how} on a terminal asks for its port, then runs until Ctrl-C`, { skip }, async (t) => {
    const dir = t.testdir()
    const port = await freeConsecutivePorts(1)
    const pty = spawnInPty(t, bin, [], cleanEnv(), dir)
    if (pick) await pty.answer(/Run a server or a client\?/, `${pick}${KEY.enter}`)
    await pty.answer(/Port to listen on \(7420\)/, `${port}${KEY.enter}`)
    await pty.answer(/Address to listen on/, KEY.enter)
    await pty.answer(/Data directory \(\.\/data\)/, `node-a${KEY.enter}`)
    await pty.answer(/Join a primary as its mirror\?/, KEY.enter)
    await pty.screen.waitFor(new RegExp(`"msg":"listening"[^\\n]*"port":${port}|"port":${port}[^\\n]*"msg":"listening"`))
    t.same(await readdir(dir), ['node-a'], 'its data directory is the one given')
    // An answer proves main() has run on past "listening" and installed its SIGINT handler (the same tick):
    // a Ctrl-C sent in between, on a loaded machine, would meet the default action instead.
    t.match((await rawRequest(port, ['op:hello\n'])).line, /^status:ok\|/, 'it serves')
    pty.input.write(KEY.ctrlC)
    t.equal(await pty.exit, 0, 'Ctrl-C stops it gracefully')
  })
}

t.test('bin/deposito asks "server or client?"; Ctrl-C at a menu prompt leaves with 130', { skip }, async (t) => {
  const dir = t.testdir()
  const pty = spawnInPty(t, CHOOSER_BIN, [], { ...cleanEnv(), DEPOSITO_HOME: join(dir, 'home') }, dir)
  await pty.answer(/Run a server or a client\?/, `2${KEY.enter}`)
  await pty.answer(/Server host/, KEY.ctrlC)
  t.equal(await pty.exit, 130)
})

t.test('without a terminal, menus are an error with a hint, never a read from stdin', async (t) => {
  const run = promisify(execFile)
  const env = { ...cleanEnv(), DEPOSITO_HOME: join(t.testdir(), 'home') }
  for (const [bin, hint] of [
    [CLIENT_BIN, /^deposito: USAGE: no command given; the commands are deposit, retrieve, .* \(see --help\)/],
    [CHOOSER_BIN, /^deposito: USAGE: `deposito` asks "server or client\?" in a terminal .* deposito-client/],
  ] as const) {
    const child = run('env', ['-u', 'NODE_OPTIONS', process.execPath, bin], { env, timeout: 20_000 })
    child.child.stdin!.end()
    const r = await child.then(
      () => ({ code: 0, stderr: '', stdout: '' }),
      (err: { code: number; stderr: string; stdout: string }) => err,
    )
    t.equal(r.code, 2, `${bin}: the USAGE status`)
    t.match(r.stderr, hint)
    t.equal(r.stdout, '')
  }
})
