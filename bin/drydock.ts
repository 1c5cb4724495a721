#!/usr/bin/env node
/**
 * The `drydock` CLI: `npx drydock --help`. Runs on Node 24's built-in type stripping (npx puts
 * node_modules/.bin/node, Node 24, first on PATH), so everything it imports is erasable
 * TypeScript; the logic is in lib/cli/.
 */
import { main } from '../lib/cli/main.ts';

// `drydock leases | head`: a closed pipe is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

const code = await main(process.argv);
// Exit once stdout is flushed, even if a keep-alive socket would hold the loop open.
process.stdout.write('', () => process.exit(code));
