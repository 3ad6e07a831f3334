import type { Command } from 'commander';
import { formatIssue } from '../../config/index.js';
import { readConfigFile } from '../config-file.js';
import { CommandExit, EXIT, type CliIo } from '../io.js';

/**
 * `tollgate config check --config FILE`: validates a config file and prints every problem at
 * once as `file:line key.path: message` (DESIGN.md §3). Exit 0 when valid, 1 when not.
 */
export function registerConfigCommand(program: Command, io: CliIo): void {
  const config = program.command('config').description('Work with Tollgate config files');
  config
    .command('check')
    .description('Validate a config file, resolving its ${env:…} and ${file:…} references, and print every error as file:line key.path: message')
    .requiredOption('--config <file>', 'the config file to check')
    .action((options: { config: string }) => {
      const result = readConfigFile(options.config, io);
      if (result.ok) {
        const { resources, roles, grants } = result.config;
        io.stdout(
          `ok: ${options.config} (${plural(resources.length, 'resource')}, ${plural(Object.keys(roles).length, 'role')}, ${plural(grants.length, 'grant')})\n`,
        );
        return;
      }
      for (const issue of result.errors) io.stderr(`${formatIssue(issue)}\n`);
      io.stderr(`${plural(result.errors.length, 'error')}\n`);
      throw new CommandExit(EXIT.failed);
    });
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}
