export { runCli, buildProgram } from './program.js';
export { processIo, EXIT, CommandExit } from './io.js';
export type { CliIo, ExitCode } from './io.js';
