/**
 * Replication end to end, leader volume loss with r = 3 (docs/replication.md): see
 * `volumeLossTests` in replication-test-support.ts.
 */
import { volumeLossTests } from './replication-test-support.js';

volumeLossTests(3);
