import type { Server } from 'node:http';
import { TollgateError } from '../core/index.js';

/**
 * Listens on 127.0.0.1:`port`; a port that is taken or forbidden becomes `TG_ERR_DEMO_START`
 * naming what wanted it and how to move the demo elsewhere.
 */
export function listenOn(server: Server, port: number, role: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const fail = (error: NodeJS.ErrnoException) => {
      const why = error.code === 'EADDRINUSE' ? 'is in use' : `cannot be listened on (${error.code ?? error.message})`;
      reject(
        new TollgateError('TG_ERR_DEMO_START', `port ${port} (${role}) ${why}; stop what uses it, or move the demo with --port-base N`, {
          cause: error,
          details: { port, role },
        }),
      );
    };
    server.once('error', fail);
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => {
      server.off('error', fail);
      resolve();
    });
  });
}
