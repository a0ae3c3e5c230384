/**
 * Partition selection lives in @hadron/proto (partition-hash.ts) so that the partition server's
 * HTTP ingress places events exactly as this client does; re-exported here for the client API.
 */
export { partitionOf, partitionOfKey, partitionKeyOf, xxh64Hex, xxh64BigInt, xxh64Pair, type KeyedEvent } from '@hadron/proto';
