import { parseAddress } from '../net/address.js'
import { DEFAULT_PORT } from '../protocol/values.js'
import { SERVER_DEFAULTS } from '../server/server.js'
import { interactive, isPromptExit } from './terminal.js'

/**
 * `bin/server` started bare at a terminal: the seed asks for the port and whether to join a primary. The
 * answers become ordinary flags, so what runs afterwards is exactly `bin/server --port ... --join ...`, parsed
 * and checked by the same code. (Without a terminal bare `bin/server` starts with the defaults: supervisors
 * run it that way.)
 */
export interface PromptIO {
  input: NodeJS.ReadableStream
  output: NodeJS.WriteStream
}

/** `argv`, or for a bare `bin/server` at a terminal `argv` plus the flags asked for; undefined after Ctrl-C. */
export async function withAskedFlags(argv: string[], io: PromptIO = { input: process.stdin, output: process.stdout }): Promise<string[] | undefined> {
  if (argv.length > 2 || !interactive(io.input as { isTTY?: boolean }, io.output)) return argv
  try {
    return [...argv, ...(await askServerFlags(io))]
  } catch (err) {
    if (isPromptExit(err)) return undefined
    throw err
  }
}

export async function askServerFlags(io: PromptIO, env: NodeJS.ProcessEnv = process.env): Promise<string[]> {
  // Loaded only here: a server that runs from flags (nearly all of them) keeps the prompt library out of its memory.
  const { confirm, input, number } = await import('@inquirer/prompts')
  const port = await number({ message: 'Port to listen on', default: DEFAULT_PORT, min: 1, max: 65535, required: true }, io)
  // A node other machines must reach (a primary with remote mirrors, a mirror of a remote primary) cannot stay on
  // loopback; a mirror on a wildcard address advertises the one its primary reached it from.
  const host = await input({ message: 'Address to listen on (127.0.0.1: this machine only; 0.0.0.0: every interface)', default: SERVER_DEFAULTS.host, required: true }, io)
  const data = await input({ message: 'Data directory', default: SERVER_DEFAULTS.dataDir, required: true }, io)
  const flags = ['--port', String(port), ...(host.trim() === SERVER_DEFAULTS.host ? [] : ['--host', host.trim()]), '--data', data.trim()]
  if (!(await confirm({ message: 'Join a primary as its mirror? (No: run as a primary)', default: false }, io))) return flags
  const primary = await input({ message: 'Primary address (host:port)', required: true, validate: validPrimary }, io)
  flags.push('--join', primary.trim())
  // The secret may come from the environment already; otherwise joining needs a file with it.
  if (!env.DEPOSITO_SECRET) {
    flags.push('--secret-file', (await input({ message: 'Cluster secret file (the same on every node)', required: true }, io)).trim())
  }
  return flags
}

function validPrimary(text: string): true | string {
  try {
    parseAddress(text)
    return true
  } catch {
    return `a primary's address, e.g. 127.0.0.1:${DEFAULT_PORT}`
  }
}
