/**
 * `hadron-operator`: runs the operator, configured by the environment (config.ts).
 * `hadron-operator crds` prints the CustomResourceDefinitions as YAML instead.
 * Exit codes: 0 after SIGTERM/SIGINT, 1 on a start-up failure, 2 on bad config.
 */
import { stringify } from 'yaml';
import { createLogger } from '@hadron/core';
import { hadronCrds } from '@hadron/k8s';
import { parseOperatorConfig } from './config.js';
import { Operator } from './app.js';

export async function main(argv: string[] = process.argv.slice(2), env: NodeJS.ProcessEnv = process.env): Promise<void> {
  if (argv[0] === 'crds') {
    process.stdout.write(hadronCrds().map(({ object }) => stringify(object, { lineWidth: 0 })).join('---\n'));
    return;
  }
  let config;
  try {
    config = parseOperatorConfig(env);
  } catch (err) {
    process.stderr.write(`hadron-operator: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 2;
    return;
  }
  const logger = createLogger({ level: config.logLevel, name: 'hadron-operator', base: { pod: config.podName } });
  const operator = new Operator(config, { logger });
  const shutdown = (signal: string): void => {
    logger.info({ signal }, 'shutdown requested');
    void operator.stop().then(() => {
      logger.flush();
      process.exit(0);
    });
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
  try {
    await operator.start();
  } catch (err) {
    logger.fatal({ err }, 'start-up failed');
    process.stderr.write(`hadron-operator: start-up failed: ${err instanceof Error ? err.message : String(err)}\n`);
    await operator.stop();
    logger.flush();
    process.exit(1);
  }
}
