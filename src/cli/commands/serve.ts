import type { Command } from 'commander';
import { loadValidConfigSource } from '../config-file.js';
import type { CliIo } from '../io.js';
import { createLogger } from '../logger.js';
import { configFileReader, startReloadTriggers } from '../reload.js';
import { waitForStopSignal } from '../signals.js';

/**
 * `tollgate serve --config FILE [--watch-config]`: runs the gateway until SIGTERM or SIGINT, then
 * drains in-flight requests, records `gateway.stop` and signs a final checkpoint before exiting.
 * SIGHUP (and, with `--watch-config`, a change to the file) reloads roles, grants and resources
 * without dropping connections.
 */
export function registerServeCommand(program: Command, io: CliIo): void {
  program
    .command('serve')
    .description('Run the gateway: HTTP and Postgres listeners, admin listener, audit log')
    .requiredOption('--config <file>', 'the config file')
    .option('--watch-config', 'reload the config when its file changes (SIGHUP always reloads it)')
    .action(async (options: { config: string; watchConfig?: boolean }) => {
      // Loaded here, not at the top: every other command would pay for the gateway at start-up.
      const { startGateway } = await import('../gateway.js');
      const { config, sha256 } = loadValidConfigSource(options.config, io);
      const logger = createLogger(config.logging.level);
      const reader = configFileReader(options.config, io);
      const gateway = await startGateway(config, { logger, configFile: { reader, sha256 } });
      const triggers = startReloadTriggers({
        reload: (trigger) => gateway.reload(trigger),
        logger,
        watchFile: options.watchConfig === true ? reader.file : null,
      });
      io.stderr(`tollgate serving ${gateway.http.url} (admin ${gateway.admin.url})\n`);
      const signal = await waitForStopSignal();
      logger.info({ signal }, 'stopping');
      try {
        await gateway.close(signal);
      } finally {
        triggers.close();
      }
    });
}
