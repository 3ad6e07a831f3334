/**
 * Resolves with the first SIGTERM or SIGINT, so a long-running command can drain and exit on its
 * own terms instead of being cut off mid-write.
 */
export function waitForStopSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      resolve(signal);
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}

/**
 * Calls `handler` on each SIGHUP, the conventional "reload your config" signal, until the
 * returned function is called. While a listener is installed, SIGHUP no longer ends the process
 * (its default), so a reload signal can never stop the gateway by accident.
 */
export function onReloadSignal(handler: () => void): () => void {
  const listener = (): void => handler();
  process.on('SIGHUP', listener);
  return () => {
    process.off('SIGHUP', listener);
  };
}
