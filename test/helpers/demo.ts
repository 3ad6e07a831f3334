/**
 * The whole demo in this process, as `tollgate demo` runs it (the demo stack, then the gateway on
 * the config it returns), on a free port base and in a temporary folder: for the end-to-end
 * browser test and the README screenshot script.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startGateway, type RunningGateway } from '../../src/cli/gateway.js';
import { configFileReader, configTextSha256 } from '../../src/cli/reload.js';
import { silentLogger } from '../../src/core/index.js';
import { DEMO_PORT_COUNT, demoPorts, findBusyPorts, startDemoStack, type DemoStack } from '../../src/demo/index.js';

/** A base N where N..N+5 are all free on 127.0.0.1 right now. */
export async function freeDemoPortBase(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 40_000);
    if ((await findBusyPorts(demoPorts(base))).length === 0) return base;
  }
  throw new Error(`no ${DEMO_PORT_COUNT} consecutive free ports found`);
}

/**
 * A fresh temporary folder for a demo's `data/demo`. Under root PostgreSQL runs as the system
 * user `postgres`, which must be able to enter it.
 */
export function demoRoot(prefix: string): string {
  const root = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(root, 0o755);
  return root;
}

export interface RunningDemo {
  readonly stack: DemoStack;
  readonly gateway: RunningGateway;
  /** `<root>/data/demo`. */
  readonly dataDir: string;
  /** Stops the gateway (final checkpoint), then the stack. */
  close(): Promise<void>;
}

/** Starts the demo stack and the gateway in front of it, with data in `<root>/data/demo`. */
export async function startDemo(root: string, portBase: number): Promise<RunningDemo> {
  const dataDir = join(root, 'data', 'demo');
  const stack = await startDemoStack({ dataDir, portBase });
  let gateway: RunningGateway;
  try {
    // As `tollgate demo` does: the generated config, read with no environment on reloads too.
    const reader = configFileReader(stack.configFile, { cwd: root, env: {}, stdout: () => undefined, stderr: () => undefined });
    gateway = await startGateway(stack.config, { logger: silentLogger, configFile: { reader, sha256: configTextSha256(stack.configText) } });
  } catch (error) {
    await stack.close();
    throw error;
  }
  let closing: Promise<void> | null = null;
  return {
    stack,
    gateway,
    dataDir,
    close() {
      closing ??= gateway.close('test').finally(() => stack.close());
      return closing;
    },
  };
}

/** Removes a folder made by {@link demoRoot}. */
export function removeDemoRoot(root: string | undefined): void {
  if (root !== undefined) rmSync(root, { recursive: true, force: true });
}
