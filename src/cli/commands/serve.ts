import type { Command } from 'commander';
import { loadValidConfig } from '../config-file.js';
import { startGateway } from '../gateway.js';
import type { CliIo } from '../io.js';
import { createLogger } from '../logger.js';
import { waitForStopSignal } from '../signals.js';

/**
 * `tollgate serve --config FILE`: runs the gateway until SIGTERM or SIGINT, then drains in-flight
 * requests, records `gateway.stop` and signs a final checkpoint before exiting.
 */
export function registerServeCommand(program: Command, io: CliIo): void {
  program
    .command('serve')
    .description('Run the gateway: HTTP and Postgres listeners, admin listener, audit log')
    .requiredOption('--config <file>', 'the config file')
    .action(async (options: { config: string }) => {
      const config = loadValidConfig(options.config, io);
      const logger = createLogger(config.logging.level);
      const gateway = await startGateway(config, { logger });
      io.stderr(`tollgate serving ${gateway.http.url} (admin ${gateway.admin.url})\n`);
      const signal = await waitForStopSignal();
      logger.info({ signal }, 'stopping');
      await gateway.close(signal);
    });
}
