#!/usr/bin/env node
// The `hadron` command (packages/cli). Ctrl-C asks the running command to stop cleanly; a
// second Ctrl-C exits at once.
import { main } from '../dist/main.js';

const stop = new AbortController();
let signals = 0;
const onSignal = (signal) => {
  signals++;
  if (signals > 1) process.exit(130);
  stop.abort(new Error(`received ${signal}`));
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);
const code = await main(process.argv.slice(2), { signal: stop.signal });
process.exitCode = code;
// Everything is closed by now; if some handle still holds the loop, do not hang the shell.
setTimeout(() => process.exit(code), 2000).unref();
