/**
 * @hadron/cli — the `hadron` command. The bin is bin/hadron.js; `main()` runs it in-process.
 */
export { main, COMMANDS } from './main.js';
export { DevCluster, type DevClusterOptions } from './dev/cluster.js';
export { PartitionProcess } from './dev/partition-process.js';
export { syncTokens } from './dev/tokens.js';
