/**
 * @hadron/client — the TypeScript client of Hadron: topology-aware publishing, consumer groups
 * and pipeline stage handlers. See docs/client.md.
 */
export { createClient, HadronClient, PUBLISH_METHOD, PIPELINE_STATUS_METHOD, type PipelinePartitionStatus, type PipelineStageState, type ClientEvent, type ClientOptions, type ClientState } from './client.js';
export { toWireEvent, toCloudEvent, dataText, type EventInput, type CloudEventInput, type WireEventInput, type ReceivedEvent, type WireEvent } from './event.js';
export { partitionOf, partitionOfKey, partitionKeyOf, xxh64Hex, xxh64BigInt, xxh64Pair, type KeyedEvent } from './hash.js';
export { DEFAULT_PUBLISHER_OPTIONS, Publisher, type PublishAck, type PublishOptions, type PublisherOptions, type PublisherStats, type PublishTransport, type WriteAckMode } from './publisher.js';
export { STREAM_SUBSCRIBE_METHOD, type Delivery, type DeliveryHandler, type StartPoint, type SubscribeOptions } from './stream-subscription.js';
export { PIPELINE_SUBSCRIBE_METHOD, type PipelineStageOptions, type StageDelivery, type StageHandler } from './pipeline-stage.js';
export { Subscription, isFatalSubscriptionError, type PartitionSubscriptionStatus, type WorkerState } from './subscription.js';
export { MetadataFollower, METADATA_METHOD, type MetadataOpener, type MetadataState } from './metadata.js';
export { addressUrl, type PartitionHealth, type PartitionInfo, type PartitionStatus, type TopologyChange } from './topology.js';
export { HadronError, isRetriable } from '@hadron/core';
export type { ClientTlsOptions } from './tls.js';
export type {
  GroupAdminOptions,
  GroupInfo,
  GroupPartitionInfo,
  PartitionDetails,
  PartitionFailure,
  ReadOptions,
  ReadResult,
  ResetResult,
  ResetTarget,
  RetentionInfo,
  StoredEvent,
  StreamInfo,
} from './inspect.js';
export type { PipelineSpecInfo, TokenInfo } from './inspect-specs.js';
