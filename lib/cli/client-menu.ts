import { stat } from 'node:fs/promises'
import { homedir } from 'node:os'
import { confirm, input, number, select } from '@inquirer/prompts'
import type { Transport } from '../net/tls.js'
import { DepositoClient } from '../client/client.js'
import { formatAddress, parseAddress, type ServerAddress } from '../net/address.js'
import type { IdentityFile } from '../client/identity.js'
import { DepositoError } from '../protocol/errors.js'
import { parseClientId } from '../protocol/values.js'
import {
  defaultOutputPath,
  deleteCommand,
  depositCommand,
  listCommand,
  replicasCommand,
  retrieveCommand,
  statusCommand,
  type Output,
} from './client-commands.js'
import { formatBytes, printableName } from './format.js'
import { errorLine, withHint } from './hints.js'
import { INTERRUPTED_EXIT } from './interrupt.js'
import { isPromptExit } from './terminal.js'

/**
 * The seed's menu-driven client: ask where the server is and which id to reconnect with, then loop over the
 * verbs until "quit". Every action is the same command function `bin/client` runs, so a menu deposit streams,
 * checks its hash and draws its progress bar exactly like `bin/client deposit`. A failed action prints its
 * error and returns to the menu; Ctrl-C at a prompt leaves with status 130.
 */
export interface MenuIO {
  /** Keys come from here (a TTY in raw mode; a scripted stream in tests). */
  input: NodeJS.ReadableStream
  /** Prompts and results. */
  output: NodeJS.WriteStream
  /** Errors and the progress bar. */
  stderr: NodeJS.WriteStream
  progress: boolean
}

export interface MenuDefaults {
  /** What `--server` (or DEPOSITO_SERVER) says: the host and port offered at the first prompts. */
  server: ServerAddress
  id?: string
  identity: IdentityFile
  /** --response-timeout, in milliseconds (default: the client's). */
  responseTimeoutMs?: number
  /** --tls and --fingerprint (default: the client's, TLS with pins for any address off this machine). */
  transport?: Transport
}

type Action = 'deposit' | 'retrieve' | 'list' | 'replicas' | 'delete' | 'status' | 'quit'

// Numbered like the seed's menu: typing the number (then Enter) picks the line, as do the arrow keys.
const ACTIONS: { value: Action; name: string }[] = [
  { value: 'deposit', name: '1. Deposit a file' },
  { value: 'retrieve', name: '2. Retrieve a file' },
  { value: 'list', name: '3. List my files' },
  { value: 'replicas', name: '4. Change a file\'s replicas' },
  { value: 'delete', name: '5. Delete a file' },
  { value: 'status', name: '6. Cluster status' },
  { value: 'quit', name: '7. Quit' },
]

export async function clientMenu(io: MenuIO, defaults: MenuDefaults): Promise<number> {
  const ask = { input: io.input, output: io.output }
  const out: Output = { json: false, quiet: false, progress: io.progress, stdout: io.output, stderr: io.stderr }
  const showError = (err: unknown) => io.stderr.write(errorLine(withHint(err, defaults.identity.path)))
  try {
    const client = await connect(ask, io, defaults, showError)
    for (;;) {
      const action = await select({ message: 'What would you like to do?', choices: ACTIONS, pageSize: ACTIONS.length }, ask)
      if (action === 'quit') return 0
      try {
        await run(action, client, ask, out)
      } catch (err) {
        if (isPromptExit(err)) throw err
        showError(err)
      }
    }
  } catch (err) {
    if (!isPromptExit(err)) throw err
    io.output.write('\n')
    return INTERRUPTED_EXIT
  }
}

type Ask = { input: NodeJS.ReadableStream; output: NodeJS.WriteStream }

/** Host, port and id, until a server answers hello: a typo in the address is a retry, not the end. */
async function connect(ask: Ask, io: MenuIO, defaults: MenuDefaults, showError: (err: unknown) => void): Promise<DepositoClient> {
  let { host, port } = defaults.server
  for (;;) {
    const typed = (await input({ message: 'Server host', default: host, required: true, validate: validHost }, ask)).trim()
    host = parseAddress(typed).host
    // `host:port` typed at the first prompt is taken whole: its port becomes the next prompt's default.
    if (/:\d+$/.test(typed)) port = parseAddress(typed).port
    port = (await number({ message: 'Server port', default: port, min: 1, max: 65535, required: true }, ask))!
    const server = formatAddress({ host, port })
    const options = { server: { host, port }, identity: defaults.identity, responseTimeoutMs: defaults.responseTimeoutMs, transport: defaults.transport }
    // Ids are saved per cluster, which only the server can name. One that does not answer (reported at hello) gets
    // the id saved under its address, as before clusters had ids; a broken ids.json is not a network problem.
    const saved = await new DepositoClient(options).savedId().catch((err: unknown) => {
      if (!(err instanceof DepositoError)) throw err
      return defaults.identity.get(server)
    })
    const blank = saved ? `blank: the saved ${saved}` : 'blank: a new one from the server'
    const id = await input({ message: `Client id to reconnect with (${blank})`, default: defaults.id, validate: validId }, ask)
    const client = new DepositoClient({ ...options, id: id.trim() || undefined })
    try {
      const issued = await client.hello()
      io.output.write(`Connected to ${server}. Your client id is ${issued}\nKeep it: it is the key to your files from any machine (bin/client --id ${issued}).\n`)
      return client
    } catch (err) {
      showError(err)
    }
  }
}

function validHost(text: string): true | string {
  try {
    parseAddress(text)
    return true
  } catch {
    return 'a host name or an IP address, e.g. 127.0.0.1'
  }
}

function validId(text: string): true | string {
  if (text.trim() === '') return true
  try {
    parseClientId(text.trim())
    return true
  } catch {
    return 'a client id is a UUID, e.g. 0c1f6c8e-3f1e-4d5b-9b5e-2f8a7c6d5e4f (or leave it blank)'
  }
}

async function run(action: Exclude<Action, 'quit'>, client: DepositoClient, ask: Ask, out: Output): Promise<void> {
  switch (action) {
    case 'deposit': {
      const path = await input({ message: 'File to deposit', required: true, validate: regularFile }, ask)
      const replicas = await askReplicas(client, ask, 0)
      await depositCommand(client, out, localPath(path), { replicas })
      return
    }
    case 'retrieve': {
      const name = await pickFile(client, ask, out, 'File to retrieve')
      if (name === undefined) return
      const target = await input({ message: 'Save to (a path or a directory)', default: suggestedPath(name), required: true }, ask)
      await retrieveCommand(client, out, name, { output: localPath(target) })
      return
    }
    case 'list':
      await listCommand(client, out)
      return
    case 'replicas': {
      const name = await pickFile(client, ask, out, 'File whose replicas to change')
      if (name === undefined) return
      await replicasCommand(client, out, name, await askReplicas(client, ask))
      return
    }
    case 'delete': {
      const name = await pickFile(client, ask, out, 'File to delete')
      if (name === undefined || !(await confirm({ message: `Delete ${printableName(name)} for good?`, default: false }, ask))) return
      await deleteCommand(client, out, name)
      return
    }
    case 'status':
      await statusCommand(client, out)
  }
}

/** Asks for a replica count, showing how many mirrors are up to hold one (the server refuses more). */
async function askReplicas(client: DepositoClient, ask: Ask, fallback?: number): Promise<number> {
  const { nodes } = await client.status()
  const mirrors = nodes.filter((n) => n.role === 'mirror' && n.up).length
  const message = `Replicas besides the server (${mirrors} mirror${mirrors === 1 ? '' : 's'} available)`
  return (await number({ message, default: fallback, min: 0, max: mirrors, required: true }, ask))!
}

/** A choice among the client's files; undefined (after saying so) when there are none. */
async function pickFile(client: DepositoClient, ask: Ask, out: Output, message: string): Promise<string | undefined> {
  const files = await client.list()
  if (files.length === 0) {
    out.stdout.write('no files yet\n')
    return undefined
  }
  const choices = files.map((f) => ({ value: f.name, name: `${printableName(f.name)}  (${formatBytes(f.size)}, ${f.replicas} replicas)` }))
  return select({ message, choices }, ask)
}

function suggestedPath(name: string): string | undefined {
  try {
    return defaultOutputPath(name)
  } catch {
    return undefined
  }
}

/** What a person types: `~/x` means their home; quotes a terminal adds around a dropped path are not part of it. */
export function localPath(text: string): string {
  const path = text.trim().replace(/^(['"])(.*)\1$/, '$2')
  return path === '~' || path.startsWith('~/') ? homedir() + path.slice(1) : path
}

async function regularFile(text: string): Promise<true | string> {
  const info = await stat(localPath(text)).catch(() => undefined)
  return info?.isFile() ? true : `${localPath(text)} is not a file that can be read here`
}
