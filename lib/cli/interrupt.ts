/**
 * Ctrl-C while bytes are moving. The default SIGINT kills the process without running `finally` blocks, which
 * would leave a retrieval's `.partial` temp file behind and the terminal's cursor hidden by a progress bar.
 * Whatever must not outlive an interrupted transfer registers a synchronous cleanup here; on SIGINT they all run,
 * then the process exits 130 (128 + SIGINT, the shell's convention). A deposit needs nothing: its socket closes
 * with the process and the server throws the incomplete upload away.
 */
const cleanups = new Set<() => void>()

/** Registers `cleanup` until the returned function is called (when the transfer ends either way). */
export function onInterrupt(cleanup: () => void): () => void {
  cleanups.add(cleanup)
  return () => cleanups.delete(cleanup)
}

export const INTERRUPTED_EXIT = 130

/** Runs every registered cleanup (one failing does not stop the others), then exits. */
export function interrupted(exit: (code: number) => void = process.exit): void {
  for (const cleanup of cleanups) {
    try {
      cleanup()
    } catch {
      // Best effort: the process is leaving, and one stuck file must not keep the others.
    }
  }
  cleanups.clear()
  exit(INTERRUPTED_EXIT)
}

/** Installed by the client's main. (A prompt in raw mode sees Ctrl-C as a key, not a signal: the menus handle it.) */
export function exitOnInterrupt(): void {
  process.on('SIGINT', () => interrupted())
}
