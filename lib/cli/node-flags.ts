/**
 * The node flags a server runs with: bin/server's first line carries them (why: see there), and --local-cluster
 * starts its mirrors with them. A test keeps the two the same.
 */
export const SERVER_NODE_FLAGS = ['--max-semi-space-size=1']
