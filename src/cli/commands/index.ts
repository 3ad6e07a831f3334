import type { Command } from 'commander';
import type { CliIo } from '../io.js';
import { registerAuditCommand } from './audit.js';
import { registerConfigCommand } from './config-check.js';
import { registerDemoCommand } from './demo.js';
import { registerLoginCommand } from './login.js';
import { registerPolicyCommand } from './policy-explain.js';
import { registerPsqlCommand } from './psql.js';
import { registerServeCommand } from './serve.js';
import { registerTokenCommand } from './token-mint.js';

/** Adds every `tollgate` command to the program; each lives in its own module. */
export function registerCommands(program: Command, io: CliIo): void {
  // One line per command module, in the order `tollgate --help` lists them.
  registerServeCommand(program, io);
  registerDemoCommand(program, io);
  registerConfigCommand(program, io);
  registerPolicyCommand(program, io);
  registerTokenCommand(program, io);
  registerLoginCommand(program, io);
  registerPsqlCommand(program, io);
  registerAuditCommand(program, io);
}
