export * from './gen/stream_pb.js';
export * from './wire.js';
export * from './check-event.js';
export { create, toBinary, fromBinary, toJson, fromJson } from '@bufbuild/protobuf';
export * from './methods.js';
export type { DescMessage, MessageShape } from '@bufbuild/protobuf';
export * from './partition-hash.js';
