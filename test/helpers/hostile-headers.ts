/**
 * Malformed request lines, as [what, chunks as written, the code the server answers]: the hostile corpus that
 * server.test.ts checks one by one and the lockout figure throws at a crowded server.
 */
export const HOSTILE_HEADERS: [string, (string | Buffer)[], string][] = [
  ['garbage', ['garbage\n'], 'BAD_HEADER'],
  ['unknown op', ['op:explode\n'], 'BAD_HEADER'],
  ['missing id', ['op:list\n'], 'BAD_HEADER'],
  ['not UTF-8', [Buffer.from([0x6f, 0x70, 0x3a, 0xff, 0x0a])], 'BAD_HEADER'],
  ['bad escape', ['op:list|id_cliente:%zz\n'], 'BAD_HEADER'],
  ['no newline before EOF', ['op:hello'], 'BAD_HEADER'],
  ['empty name', ['op:retrieve|id_cliente:4f9d7e0e-1a2b-4c3d-8e4f-5a6b7c8d9e0f|nome_arquivo:\n'], 'BAD_NAME'],
]
