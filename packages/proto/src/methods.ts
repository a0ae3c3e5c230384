/**
 * gRPC method paths of `stream.proto` (`/{package}.{Service}/{Method}`), defined once for the
 * server, the client, the test helpers and the benchmarks.
 */
export const METHOD = {
  metadata: '/stream.StreamController/Metadata',
  publish: '/stream.StreamController/StreamPublish',
  subscribe: '/stream.StreamController/StreamSubscribe',
  pipelineSubscribe: '/stream.StreamController/PipelineSubscribe',
  pipelineStatus: '/stream.Inspection/PipelineStatus',
  partitionInfo: '/stream.Inspection/PartitionInfo',
  readEvents: '/stream.Inspection/ReadEvents',
  listPipelines: '/stream.Inspection/ListPipelines',
  listTokens: '/stream.Inspection/ListTokens',
  resetGroup: '/stream.GroupAdmin/ResetGroup',
  deleteGroup: '/stream.GroupAdmin/DeleteGroup',
  replicaFetch: '/stream.Replication/Fetch',
  replicaState: '/stream.Replication/ReplicaState',
  readReplica: '/stream.Replication/ReadReplica',
} as const;
