import { createHash } from 'node:crypto'
import { open } from 'node:fs/promises'
import { join } from 'node:path'

/**
 * Where a node keeps a client's files under its data dir (lib/store/layout.ts), for tests that look at or damage
 * them from outside the process, and a way to damage one.
 */
export function blobPath(dataDir: string, id: string, hash: string): string {
  return join(dataDir, 'clients', id, 'blobs', hash)
}

export function metaPath(dataDir: string, id: string, name: string): string {
  return join(dataDir, 'clients', id, 'files', `${createHash('sha256').update(name).digest('hex')}.json`)
}

/** Flips one byte in place, as a failing disk would: same size, same inode, wrong bytes. */
export async function flipByte(path: string, at: number): Promise<void> {
  const handle = await open(path, 'r+')
  try {
    const byte = Buffer.alloc(1)
    await handle.read(byte, 0, 1, at)
    byte[0]! ^= 0xff
    await handle.write(byte, 0, 1, at)
  } finally {
    await handle.close()
  }
}
