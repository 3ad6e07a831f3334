#!/usr/bin/env node
import { processIo } from './io.js';
import { runCli } from './program.js';

// A reader that stops early (`tollgate audit query ... | head`) closes the pipe: that ends the
// command quietly, as it would for any Unix tool, instead of crashing on the failed write.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error;
  process.exit(process.exitCode ?? 0);
});

const code = await runCli(process.argv.slice(2), processIo());
process.exitCode = code;
