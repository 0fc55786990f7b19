/**
 * `norn` entry point (bin/norn.mjs imports it): the only CLI file that touches process, its
 * environment, signals and exit.
 */
import { runCli } from './run.js';

const controller = new AbortController();
let interrupts = 0;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    // First signal: stop following (the run itself goes on); second: leave at once.
    if (++interrupts > 1) process.exit(130);
    controller.abort(sig);
  });
}

const code = await runCli({
  argv: process.argv.slice(2),
  env: process.env,
  stdout: process.stdout,
  stderr: process.stderr,
  signal: controller.signal,
});
// Pending keep-alive sockets must not hold the process; flush stdout first (a pipe may be async).
process.stdout.write('', () => process.exit(code));
