import { resolve } from 'node:path';
import type { Command } from 'commander';
import { TollgateError } from '../../core/index.js';
import type { CliIo } from '../io.js';
import { createLogger } from '../logger.js';
import { configFileReader, configTextSha256, describeReloadOutcome, startReloadTriggers } from '../reload.js';
import { waitForStopSignal } from '../signals.js';

interface DemoOptions {
  portBase?: string;
  dataDir: string;
}

/**
 * `tollgate demo` (`npm run demo`): the whole embedded demo (DESIGN.md §3 "The demo"): demo IdP,
 * demo app, embedded PostgreSQL and the gateway in front of them, until Ctrl-C. Stopping drains
 * the gateway and signs a final checkpoint; a second start reuses the data directory.
 */
export function registerDemoCommand(program: Command, io: CliIo): void {
  program
    .command('demo')
    .description('Run the embedded demo: demo IdP, demo app, embedded PostgreSQL and the gateway in front of them')
    .option('--port-base <n>', 'move the ports to N (web), N+1 (Postgres), N+2 (admin), N+3..N+5 (demo IdP, app, PostgreSQL)')
    .option('--data-dir <dir>', 'where keys, the database and the audit log live', 'data/demo')
    .action(async (options: DemoOptions) => {
      // Loaded here, not at the top: every other command would pay for the whole stack at start-up.
      const [{ banner, startDemoStack }, { startGateway }] = await Promise.all([import('../../demo/index.js'), import('../gateway.js')]);
      const portBase = options.portBase === undefined ? undefined : parsePortBase(options.portBase);
      const logger = createLogger('warn');
      // Ctrl-C is ours from the start: the banner's "Ctrl-C stops the demo" must hold the moment
      // it shows, and a Ctrl-C during start-up still ends in a drained gateway and a final
      // checkpoint instead of Node's default exit on SIGINT.
      const stopSignal = waitForStopSignal();
      const stack = await startDemoStack({
        dataDir: resolve(io.cwd, options.dataDir),
        logger,
        ...(portBase === undefined ? {} : { portBase }),
      });
      let gateway;
      try {
        // The demo loads its generated config with no environment; reloads (SIGHUP) read it the same way.
        const reader = configFileReader(stack.configFile, { ...io, env: {} });
        gateway = await startGateway(stack.config, { logger, configFile: { reader, sha256: configTextSha256(stack.configText) } });
      } catch (error) {
        await stack.close();
        throw error;
      }
      io.stdout(`${banner(stack)}\n`);
      const running = gateway;
      const triggers = startReloadTriggers({
        reload: (trigger) => running.reload(trigger),
        logger,
        watchFile: null,
        onOutcome: (outcome) => io.stderr(`${describeReloadOutcome(outcome)}\n`),
      });
      const signal = await stopSignal;
      triggers.close();
      io.stderr(`\nstopping the demo (${signal}): draining, signing the final checkpoint\n`);
      try {
        await gateway.close(signal);
      } finally {
        await stack.close();
      }
      io.stderr('demo stopped\n');
    });
}

function parsePortBase(text: string): number {
  const value = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isInteger(value) || value < 1 || value > 65_530) {
    throw new TollgateError('TG_ERR_USAGE', `--port-base ${text}: give a port number from 1 to 65530`);
  }
  return value;
}
