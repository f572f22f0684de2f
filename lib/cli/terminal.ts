/**
 * What the menus need to know about the terminal. A menu runs only with a person at both ends (keys in, screen
 * out); anywhere else a missing argument is an error, never a read from stdin that could wait forever.
 */
export function interactive(stdin: { isTTY?: boolean } = process.stdin, stdout: { isTTY?: boolean } = process.stdout): boolean {
  return stdin.isTTY === true && stdout.isTTY === true
}

/** Inquirer rejects with this when the user presses Ctrl-C at a prompt (or the input ends). */
export function isPromptExit(err: unknown): boolean {
  return err instanceof Error && err.name === 'ExitPromptError'
}
