import { Command, CommanderError } from 'commander';
import { isTollgateError } from '../core/index.js';
import { CommandExit, EXIT, type CliIo } from './io.js';
import { registerCommands } from './commands/index.js';

/**
 * Builds the `tollgate` program. Every command and subcommand gets `--help`; usage errors exit 2,
 * failed checks exit 1.
 */
export function buildProgram(io: CliIo): Command {
  const program = new Command('tollgate')
    .description('Identity-aware access gateway for HTTP services and PostgreSQL, with a tamper-evident audit log')
    .version(VERSION, '-V, --version')
    .showHelpAfterError('(run with --help for usage)');
  registerCommands(program, io);
  applyIo(program, io);
  return program;
}

function applyIo(command: Command, io: CliIo): void {
  command.exitOverride().configureOutput({ writeOut: io.stdout, writeErr: io.stderr });
  for (const sub of command.commands) applyIo(sub, io);
}

const VERSION = '0.1.0';

/** Runs the program on `argv` (without `node` and script) and returns the exit code. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return EXIT.ok;
  } catch (error) {
    return exitCodeFor(error, io);
  }
}

function exitCodeFor(error: unknown, io: CliIo): number {
  if (error instanceof CommandExit) return error.exitCode;
  if (error instanceof CommanderError) {
    // --help and --version end through this path with code 0.
    return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
  }
  if (isTollgateError(error)) {
    io.stderr(`error ${error.code}: ${error.message}\n`);
    return error.code === 'TG_ERR_USAGE' ? EXIT.usage : EXIT.failed;
  }
  io.stderr(`error TG_ERR_INTERNAL: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  return EXIT.failed;
}
