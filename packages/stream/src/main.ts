/**
 * `hadron-stream`: the partition server process. Configured by the environment (see
 * docs/configuration.md). Exit codes: 0 after SIGTERM/SIGINT, 1 on a fatal error, 2 on bad config.
 */
import { HadronError, createLogger } from '@hadron/core';
import { parseStreamConfig } from './config.js';
import { StreamServer } from './app.js';

export async function main(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  let config;
  try {
    config = parseStreamConfig(env);
  } catch (err) {
    process.stderr.write(`hadron-stream: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 2;
    return;
  }
  // Every line names its Stream and partition, so `kubectl logs -l hadron.rs/stream=events` can be filtered by them.
  const logger = createLogger({ level: config.logLevel, name: 'hadron-stream', base: { pod: config.podName, stream: config.stream, partition: config.partition } });
  const server = new StreamServer(config, {
    logger,
    onFatal: () => {
      logger.flush();
      process.exit(1);
    },
  });
  const shutdown = (signal: string): void => {
    logger.info({ signal }, 'shutdown requested');
    void server.stop().then(() => {
      logger.flush();
      process.exit(0);
    });
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
  try {
    await server.start();
  } catch (err) {
    logger.fatal({ err }, 'start-up failed');
    process.stderr.write(`hadron-stream: start-up failed: ${err instanceof Error ? err.message : String(err)}\n`);
    await server.stop();
    logger.flush();
    process.exit(err instanceof HadronError && err.code === 'CONFIG_INVALID' ? 2 : 1);
  }
}
