import { Command, CommanderError, InvalidArgumentError, Option } from 'commander'
import { DEFAULT_RESPONSE_TIMEOUT_MS, DepositoClient } from '../client/client.js'
import { DEFAULT_SERVER, parseAddressList } from '../net/address.js'
import { IdentityFile, defaultHome } from '../client/identity.js'
import { KnownServers, pinningTransport } from '../client/known-servers.js'
import { parseFingerprint } from '../net/fingerprint.js'
import type { Transport } from '../net/tls.js'
import { UploadTokens } from '../client/upload-tokens.js'
import { DepositoError, ERROR_CODES } from '../protocol/errors.js'
import { parseClientId } from '../protocol/values.js'
import { depositCommand, deleteCommand, idCommand, listCommand, replicasCommand, retrieveCommand, statusCommand, type Output } from './client-commands.js'
import { INTERRUPTED_EXIT, exitOnInterrupt } from './interrupt.js'
import { interactive } from './terminal.js'
import { errorLine, withHint } from './hints.js'

/**
 * `bin/client`: argument parsing and the mapping from errors to one stderr line and an exit status. Every
 * failure, ours or the server's, leaves through `fail` with the exit code of its error code.
 */
function count(value: string): number {
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) throw new InvalidArgumentError('expected a whole number')
  return Number(value)
}

/** Seconds, possibly fractional (0.5), as milliseconds. */
function seconds(value: string): number {
  const n = Number(value)
  if (!/^\d+(\.\d+)?$/.test(value) || n <= 0 || n > 3600) throw new InvalidArgumentError('expected seconds, more than 0 and at most 3600 (e.g. 5 or 0.5)')
  return Math.round(n * 1000)
}

function exitCodeTable(): string {
  const rows = Object.entries(ERROR_CODES)
    .sort((a, b) => a[1].exit - b[1].exit)
    .map(([code, { exit, summary }]) => `  ${String(exit).padStart(2)}  ${code.padEnd(16)} ${summary}`)
  const interrupted = `${String(INTERRUPTED_EXIT).padStart(4)}  ${'(Ctrl-C)'.padEnd(16)} interrupted; nothing is left half-written`
  return `\nExit status:\n   0  OK\n${rows.join('\n')}\n${interrupted}\n`
}

export function buildProgram(env: NodeJS.ProcessEnv = process.env, { json = false } = {}): Command {
  const program = new Command('deposito-client')
    // Set before any subcommand exists: subcommands copy these settings when they are created.
    .exitOverride()
    // Usage mistakes read like every other failure: one `deposito: USAGE: ...` line (none at all in --json mode,
    // where main() prints the JSON document).
    .configureOutput({
      outputError: (text, write) => {
        if (!json) write(`deposito: USAGE: ${text.trim().replace(/^error: /, '')} (see --help)\n`)
      },
    })
    .description('Deposit files on a deposito server and retrieve them.')
    .addOption(new Option('-s, --server <host:port,...>', 'server address; a comma-separated list is tried in order').env('DEPOSITO_SERVER').default(DEFAULT_SERVER))
    .addOption(
      new Option('--response-timeout <seconds>', 'how long a node may take to answer before the next one in --server is tried')
        .env('DEPOSITO_RESPONSE_TIMEOUT')
        .default(DEFAULT_RESPONSE_TIMEOUT_MS, '5')
        .argParser(seconds),
    )
    .option('--tls', 'use TLS on loopback too (env DEPOSITO_TLS=1); any other address always gets it')
    .option('--fingerprint <sha256,...>', "trust only these node certificates (as `deposito-server fingerprint` prints them), and pin them; implies --tls")
    .addOption(new Option('--id <uuid>', 'client id to use (default: the one saved for this server); on a shared machine use DEPOSITO_ID instead: a command line shows in ps').env('DEPOSITO_ID'))
    .option('--json', 'print one JSON document on stdout (errors too)')
    .option('-q, --quiet', 'print nothing on success')
    .option('--progress', 'show a progress bar even when stderr is not a terminal')
    .option('--no-progress', 'never show a progress bar')
    .showSuggestionAfterError(true)
    // Each command's --help lists --server, --json and the rest too: they are accepted after the command name.
    .configureHelp({ showGlobalOptions: true })
    .addHelpText(
      'after',
      `
With no command, on a terminal: an interactive menu (server address, client id, then deposit, retrieve, list...).

With several --server nodes, writes go to the primary (a mirror's pointer to it is followed once) and reads to
the primary when it answers, else to the first mirror that does (said on stderr, and as servedBy in --json).

Examples:
  $ deposito-client deposit bigfile.iso --replicas 1
  $ tar c photos | deposito-client deposit - --name photos.tar
  $ deposito-client list
  $ deposito-client retrieve photos.tar -o - | tar x
  $ deposito-client delete bigfile.iso

Your id is the key to your files: on a machine others use, pass it as DEPOSITO_ID or let the saved one be found,
never as --id (every user can read a command line with ps).

TLS: connections to any address but loopback use TLS. The first time a node is reached its certificate is pinned
in DEPOSITO_HOME/known_servers.json; a node that later presents another one is refused (UNTRUSTED).

Environment: DEPOSITO_SERVER, DEPOSITO_RESPONSE_TIMEOUT, DEPOSITO_TLS, DEPOSITO_ID (safer than --id, which other
users can see in ps), DEPOSITO_HOME (where issued ids, pins and the tokens of unfinished deposits are saved;
default ~/.config/deposito).
${exitCodeTable()}`,
    )

  program
    .command('deposit')
    .description('store FILE (or stdin, with -) on the server')
    .argument('<file>', 'path of the file, or - to read standard input')
    .option('-n, --name <name>', 'name to store it under (default: the file name; required for -)')
    .option('-r, --replicas <n>', 'copies to keep on mirrors besides the server (default: the server\'s)', count)
    .option('--retries <n>', 'retries after a dropped or timed-out connection, each resuming where the bytes stopped (default 5)', count)
    .option('--no-resume', 'send no upload token: a retry (or a re-run) starts over from byte 0')
    .addHelpText('after', `
A deposit of a regular file is resumable: cut by the network, it is retried with backoff (0.5 s doubling to 10 s),
asking the server how many bytes it holds and sending only the rest (stderr says from where); running the same
command again later resumes too, while the file keeps its size and mtime. A deposit from a pipe cannot resume.
`)
    .addHelpText('after', examples(
      'deposito-client deposit report.pdf',
      'deposito-client deposit disk.img --replicas 2',
      'tar c photos | deposito-client deposit - --name photos.tar',
      'deposito-client --json deposit report.pdf',
    ))
    .action(async (file: string, opts: { name?: string; replicas?: number; retries?: number; resume: boolean }, cmd: Command) => {
      const { client, out } = await setup(cmd, env)
      await depositCommand(client, out, file, { ...opts, tokens: new UploadTokens(defaultHome(env)) })
    })

  program
    .command('retrieve')
    .description('fetch a stored file and check its hash')
    .argument('<name>', 'name the file was stored under')
    .option('-o, --output <path>', 'where to write it: a path, a directory, or - for stdout (default: ./NAME)')
    .option('--retries <n>', 'retries after a dropped or timed-out connection, each resuming where the bytes stopped (default 5)', count)
    .addHelpText('after', `
A file is written to FILE.partial beside the target, fsynced and renamed only once the whole file's sha256 checked.
A cut retrieval keeps FILE.partial: the retries, or a later run, continue from its length. With -o - a retry asks
for the bytes after those already written.
`)
    .addHelpText('after', examples(
      'deposito-client retrieve report.pdf',
      'deposito-client retrieve report.pdf -o ~/Downloads/',
      'deposito-client retrieve photos.tar -o - | tar x',
      'deposito-client --server primary:7420,mirror:7421 retrieve report.pdf',
    ))
    .action(async (name: string, opts: { output?: string; retries?: number }, cmd: Command) => {
      const { client, out } = await setup(cmd, env)
      await retrieveCommand(client, out, name, opts)
    })

  program
    .command('list')
    .description('list your stored files')
    .addHelpText('after', examples(
      'deposito-client list',
      'deposito-client --json list',
    ))
    .action(async (_opts: unknown, cmd: Command) => {
      const { client, out } = await setup(cmd, env)
      await listCommand(client, out)
    })

  program
    .command('delete')
    .description('remove a stored file')
    .argument('<name>', 'name the file was stored under')
    .addHelpText('after', examples(
      'deposito-client delete report.pdf',
    ))
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      const { client, out } = await setup(cmd, env)
      await deleteCommand(client, out, name)
    })

  program
    .command('replicas')
    .description('change how many mirrors keep a copy of a stored file (no bytes are sent from here)')
    .argument('<name>', 'name the file was stored under')
    .argument('<n>', 'replicas wanted', count)
    .addHelpText('after', examples(
      'deposito-client replicas report.pdf 2',
      'deposito-client replicas report.pdf 0',
    ))
    .action(async (name: string, n: number, _opts: unknown, cmd: Command) => {
      const { client, out } = await setup(cmd, env)
      await replicasCommand(client, out, name, n)
    })

  program
    .command('status')
    .description('show the cluster: each node, up or down, what it stores, and files short of copies')
    .addHelpText('after', examples(
      'deposito-client status',
      'deposito-client --server 10.0.0.5:7420 status',
    ))
    .action(async (_opts: unknown, cmd: Command) => {
      const { client, out } = await setup(cmd, env)
      await statusCommand(client, out)
    })

  program
    .command('id')
    .description('print your client id (asking the server for one if you have none)')
    .addHelpText('after', examples(
      'deposito-client id',
      'deposito-client --server alpha:7420 id',
    ))
    .action(async (_opts: unknown, cmd: Command) => {
      const { client, out } = await setup(cmd, env)
      await idCommand(client, out)
    })

  // No command: the seed's menu on a terminal; anywhere else an error, never a read from stdin that could hang.
  // (Excess operands reach this action only because the root has no arguments of its own: an unknown command.)
  program.allowExcessArguments().action(async (_opts: unknown, cmd: Command) => {
    const names = program.commands.map((c) => c.name()).join(', ')
    if (cmd.args.length > 0) throw new DepositoError('USAGE', `unknown command ${JSON.stringify(cmd.args[0])}; the commands are ${names} (see --help)`)
    const opts = cmd.opts<GlobalOptions>()
    if (opts.json || !interactive()) {
      throw new DepositoError('USAGE', `no command given; the commands are ${names} (see --help). Run it with no command in a terminal for the menu.`)
    }
    const [server] = parseAddressList(opts.server)
    // Loaded only for the menu, so every scripted command starts without the prompt library.
    const { clientMenu } = await import('./client-menu.js')
    process.exitCode = await clientMenu(
      { input: process.stdin, output: process.stdout, stderr: process.stderr, progress: opts.progress ?? process.stderr.isTTY === true },
      { server: server!, id: clientId(opts.id), identity: new IdentityFile(defaultHome(env)), responseTimeoutMs: opts.responseTimeout, transport: transport(opts, env) },
    )
  })

  return program
}

function clientId(text: string | undefined): string | undefined {
  try {
    return text === undefined ? undefined : parseClientId(text)
  } catch {
    throw new DepositoError('USAGE', `--id ${JSON.stringify(text)} is not a UUID v4; use the id a server issued you (bin/client id prints it)`)
  }
}

function examples(...lines: string[]): string {
  return `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n\nExit statuses: see deposito-client --help.\n`
}

interface GlobalOptions {
  server: string
  tls?: boolean
  fingerprint?: string
  /** Milliseconds (parsed from seconds). */
  responseTimeout: number
  id?: string
  json?: boolean
  quiet?: boolean
  progress?: boolean
}

async function setup(cmd: Command, env: NodeJS.ProcessEnv): Promise<{ client: DepositoClient; out: Output }> {
  const opts = cmd.optsWithGlobals<GlobalOptions>()
  const server = parseAddressList(opts.server)
  const id = clientId(opts.id)
  const json = opts.json === true
  // --progress / --no-progress force it; otherwise a bar only when a person is watching stderr.
  const progress = !json && !opts.quiet && (opts.progress ?? process.stderr.isTTY === true)
  const client = new DepositoClient({ server, id, identity: new IdentityFile(defaultHome(env)), responseTimeoutMs: opts.responseTimeout, transport: transport(opts, env) })
  return { client, out: { json, quiet: opts.quiet === true, progress, stdout: process.stdout, stderr: process.stderr } }
}

/** `--tls` or DEPOSITO_TLS=1 (a flag-like variable: 0, false or empty leave TLS to the address). */
function transport(opts: GlobalOptions, env: NodeJS.ProcessEnv): Transport {
  const fingerprints = opts.fingerprint?.split(',').filter((f) => f.trim() !== '').map(parseFingerprint)
  return pinningTransport({
    known: new KnownServers(defaultHome(env)),
    tls: opts.tls === true || /^(1|true|yes)$/i.test(env.DEPOSITO_TLS ?? ''),
    ...(fingerprints ? { fingerprints } : {}),
  })
}

function fail(err: DepositoError, json: boolean, stdoutHasData: boolean): number {
  // With `-o -` stdout carries file bytes; a JSON document after them would corrupt the output.
  if (json) (stdoutHasData ? process.stderr : process.stdout).write(JSON.stringify({ error: { code: err.code, message: err.message } }) + '\n')
  else process.stderr.write(errorLine(err))
  return err.exitCode
}

export async function main(argv: string[] = process.argv): Promise<number> {
  const json = argv.includes('--json')
  const program = buildProgram(process.env, { json })
  exitOnInterrupt()
  try {
    await program.parseAsync(argv)
    // A command that succeeded with a warning (DEGRADED) has set its own status.
    return Number(process.exitCode ?? 0)
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version are "errors" to commander; usage mistakes were already printed by it, except in --json.
      if (err.exitCode === 0) return 0
      return json ? fail(new DepositoError('USAGE', err.message.replace(/^error: /, '')), true, false) : ERROR_CODES.USAGE.exit
    }
    const e = withHint(err, new IdentityFile(defaultHome()).path)
    return fail(e, json, argv.some((a, i) => a === '--output=-' || a === '-o-' || ((a === '-o' || a === '--output') && argv[i + 1] === '-')))
  }
}
