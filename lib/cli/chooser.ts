import { select } from '@inquirer/prompts'
import { main as clientMain } from './client.js'
import { main as serverMain } from './server.js'
import { ERROR_CODES } from '../protocol/errors.js'
import { INTERRUPTED_EXIT } from './interrupt.js'
import { interactive, isPromptExit } from './terminal.js'
import type { PromptIO } from './server-menu.js'

/**
 * `deposito` (bin/deposito, `npx deposito`): the seed's main.py, which asks "server or client?" and hands over
 * to that side's menu. It takes no arguments; scripts call deposito-server or deposito-client directly.
 * Resolves with an exit status, or undefined when a server now runs (its signals decide when it stops).
 */
export async function main(argv: string[] = process.argv, io: PromptIO = { input: process.stdin, output: process.stdout }): Promise<number | undefined> {
  if (argv.length > 2 || !interactive(io.input as { isTTY?: boolean }, io.output)) {
    process.stderr.write(
      'deposito: USAGE: `deposito` asks "server or client?" in a terminal and takes no arguments; ' +
        'for scripts run deposito-server or deposito-client (bin/server, bin/client) with flags (see their --help)\n',
    )
    return ERROR_CODES.USAGE.exit
  }
  let side: 'server' | 'client'
  try {
    side = await select(
      {
        message: 'Run a server or a client?',
        choices: [
          { value: 'server' as const, name: '1. Server — keep files for clients (and mirror a primary)' },
          { value: 'client' as const, name: '2. Client — deposit and retrieve files' },
        ],
      },
      io,
    )
  } catch (err) {
    if (isPromptExit(err)) return INTERRUPTED_EXIT
    throw err
  }
  // Each side's main with no arguments opens that side's menu.
  const bare = argv.slice(0, 2)
  if (side === 'client') return clientMain(bare)
  await serverMain(bare)
  return undefined
}
