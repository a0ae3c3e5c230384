/**
 * The CustomResourceDefinitions of `hadron.rs/v1beta1` (reference §4), generated from the shared
 * types in `@hadron/core` (`StreamSpec`, `PipelineSpec`, `TokenSpec`): each `properties` map is
 * typed `SchemaOf<Spec>`, so adding, renaming or removing a field of a spec type without
 * updating its schema is a compile error. The chart's `crds/*.yaml` are written from here
 * (`npm run gen-crds -w @hadron/k8s`) and a test fails when they differ.
 *
 * Validation (structural OpenAPI v3, applied by the API server): partitions 1–1024, quantities,
 * the enums of retention strategy, start location and access modes, non-negative integers.
 * Defaults are applied by the API server and equal those of `parseStream`/`parsePipeline`/
 * `parseToken`, so the Kubernetes and the local control planes see identical specs.
 * The semantic Pipeline rules (DAG, triggers, stage names) are the webhook's job.
 */
import {
  API_GROUP,
  DEFAULT_RETENTION_SECONDS,
  type PipelineSpec,
  type PipelineStage,
  type PubSub,
  type StreamSpec,
  type TokenSpec,
} from '@hadron/core';
import type { KubeObject } from './types.js';

export interface JSONSchemaProps {
  type?: 'object' | 'array' | 'string' | 'integer' | 'boolean' | 'number';
  description?: string;
  properties?: Record<string, JSONSchemaProps>;
  required?: string[];
  items?: JSONSchemaProps;
  enum?: unknown[];
  default?: unknown;
  nullable?: boolean;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  pattern?: string;
  format?: string;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  'x-kubernetes-list-map-keys'?: string[];
}

/** One schema per field of T, no more, no less. */
type SchemaOf<T> = { [K in keyof Required<T>]: JSONSchemaProps };

/** Same grammar as `parseStream`'s quantity check. */
export const QUANTITY_PATTERN = '^[0-9]+(\\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E|m)?$';
export const ACCESS_MODES = ['ReadWriteOnce', 'ReadOnlyMany', 'ReadWriteMany', 'ReadWriteOncePod'] as const;
export const MAX_PARTITIONS = 1024;

const strings = (description: string, extra: JSONSchemaProps = {}): JSONSchemaProps => ({ type: 'array', items: { type: 'string' }, description, ...extra });

const conditions: JSONSchemaProps = {
  type: 'array',
  description: 'Standard conditions (metav1.Condition), one per type.',
  'x-kubernetes-list-type': 'map',
  'x-kubernetes-list-map-keys': ['type'],
  items: {
    type: 'object',
    required: ['type', 'status', 'reason', 'message', 'lastTransitionTime'],
    properties: {
      type: { type: 'string' },
      status: { type: 'string', enum: ['True', 'False', 'Unknown'] },
      reason: { type: 'string' },
      message: { type: 'string' },
      observedGeneration: { type: 'integer', minimum: 0 },
      lastTransitionTime: { type: 'string', format: 'date-time' },
    },
  },
};
const observedGeneration: JSONSchemaProps = { type: 'integer', minimum: 0, description: 'The metadata.generation this status describes.' };

// ---------------------------------------------------------------------------------------------

const retentionPolicy: SchemaOf<StreamSpec['retentionPolicy']> = {
  strategy: { type: 'string', enum: ['retain', 'time'], description: '`time`: delete events older than retentionSeconds; `retain`: keep everything.' },
  retentionSeconds: { type: 'integer', minimum: 0, nullable: true, default: DEFAULT_RETENTION_SECONDS, description: 'Age limit for `time` retention (default 7 days).' },
};

export const streamSpecSchema: SchemaOf<StreamSpec> = {
  partitions: { type: 'integer', minimum: 1, maximum: MAX_PARTITIONS, description: 'Number of partitions: the StatefulSet replicas. Scaling down keeps the PVCs of removed partitions.' },
  debug: { type: 'boolean', default: false, description: 'Debug logging in the partition servers.' },
  retentionPolicy: {
    type: 'object',
    required: ['strategy'],
    properties: retentionPolicy,
    default: { strategy: 'time', retentionSeconds: DEFAULT_RETENTION_SECONDS },
    description: 'How long events are kept.',
  },
  image: { type: 'string', minLength: 1, description: 'Partition server image, used verbatim.' },
  pvcVolumeSize: { type: 'string', pattern: QUANTITY_PATTERN, default: '1Gi', description: 'Size of each partition volume (a quantity such as 5Gi). Fixed once the StatefulSet exists.' },
  pvcAccessModes: { ...strings('Access modes of the partition volumes (default ReadWriteOnce).'), items: { type: 'string', enum: [...ACCESS_MODES] }, nullable: true },
  pvcStorageClass: { type: 'string', nullable: true, description: 'StorageClass of the partition volumes (default: the cluster default).' },
};

const stage: SchemaOf<PipelineStage> = {
  name: { type: 'string', minLength: 1, description: 'Stage name (an RFC 1123 label).' },
  after: strings('Stages that must complete before this one.', { default: [] }),
  dependencies: strings('Stages whose outputs this one receives (implies after).', { default: [] }),
};

const startPoint: SchemaOf<PipelineSpec['startPoint']> = {
  location: { type: 'string', enum: ['beginning', 'latest', 'offset'] },
  offset: { type: 'integer', minimum: 0, nullable: true, description: 'First offset to process when location is `offset`.' },
};

export const pipelineSpecSchema: SchemaOf<PipelineSpec> = {
  sourceStream: { type: 'string', minLength: 1, description: 'The Stream whose events trigger this pipeline.' },
  triggers: strings('Event type patterns (`*` one token, `>` trailing tokens); empty matches every event.', { default: [] }),
  stages: { type: 'array', minItems: 1, items: { type: 'object', required: ['name'], properties: stage }, description: 'The stages of the DAG.' },
  maxParallel: { type: 'integer', minimum: 0, description: 'Maximum number of pipeline instances in flight per partition (must be > 0).' },
  startPoint: {
    type: 'object',
    required: ['location'],
    properties: startPoint,
    default: { location: 'beginning' },
    description: 'Where a new pipeline starts in its source stream.',
  },
};

const pubSub = (what: string): JSONSchemaProps => {
  const props: SchemaOf<PubSub> = {
    pub: strings(`${what} this token may publish to.`),
    sub: strings(`${what} this token may subscribe to.`),
  };
  return { type: 'object', nullable: true, required: ['pub', 'sub'], properties: props };
};

export const tokenSpecSchema: SchemaOf<TokenSpec> = {
  all: { type: 'boolean', default: false, description: 'Grants every permission.' },
  streams: pubSub('Streams'),
  exchanges: pubSub('Exchanges'),
  endpoints: pubSub('Endpoints'),
};

// ---------------------------------------------------------------------------------------------

export interface PrinterColumn {
  name: string;
  type: 'string' | 'integer' | 'boolean' | 'date' | 'number';
  jsonPath: string;
  description?: string;
  priority?: number;
}

interface CrdInput {
  kind: 'Stream' | 'Pipeline' | 'Token';
  plural: string;
  description: string;
  spec: { properties: Record<string, JSONSchemaProps>; required: string[] };
  status: Record<string, JSONSchemaProps>;
  columns: PrinterColumn[];
}

const ready = (t = 'Ready'): PrinterColumn => ({ name: t, type: 'string', jsonPath: `.status.conditions[?(@.type=="${t}")].status` });
const age: PrinterColumn = { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' };

function crd(i: CrdInput): KubeObject {
  const singular = i.kind.toLowerCase();
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${i.plural}.${API_GROUP}`, labels: { app: 'hadron' } },
    spec: {
      group: API_GROUP,
      scope: 'Namespaced',
      names: { plural: i.plural, singular, kind: i.kind, shortNames: [singular], categories: ['hadron'] },
      versions: [
        {
          name: 'v1beta1',
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: i.columns,
          schema: {
            openAPIV3Schema: {
              type: 'object',
              description: i.description,
              required: ['spec'],
              properties: {
                apiVersion: { type: 'string' },
                kind: { type: 'string' },
                metadata: { type: 'object' },
                spec: { type: 'object', required: i.spec.required, properties: i.spec.properties },
                status: { type: 'object', nullable: true, properties: { observedGeneration, conditions, ...i.status } },
              },
            },
          },
        },
      ],
    },
  };
}

export const streamCrd = (): KubeObject =>
  crd({
    kind: 'Stream',
    plural: 'streams',
    description: 'A durable, partitioned event stream: one StatefulSet pod per partition.',
    spec: { properties: streamSpecSchema, required: ['partitions', 'image'] },
    status: {
      partitions: { type: 'integer', minimum: 0, description: 'Desired partitions (spec.partitions at observedGeneration).' },
      readyPartitions: { type: 'integer', minimum: 0, description: 'Partitions whose pod is Ready.' },
      statefulSet: { type: 'string', description: 'Name of the StatefulSet.' },
    },
    columns: [
      { name: 'Partitions', type: 'integer', jsonPath: '.spec.partitions' },
      { name: 'Ready Partitions', type: 'integer', jsonPath: '.status.readyPartitions' },
      ready(),
      { name: 'Debug', type: 'boolean', jsonPath: '.spec.debug' },
      { name: 'Retention', type: 'string', jsonPath: '.spec.retentionPolicy.strategy' },
      { name: 'Retention Seconds', type: 'integer', jsonPath: '.spec.retentionPolicy.retentionSeconds' },
      { name: 'PVC Volume Size', type: 'string', jsonPath: '.spec.pvcVolumeSize' },
      { name: 'PVC Access Modes', type: 'string', jsonPath: '.spec.pvcAccessModes', priority: 1 },
      { name: 'PVC Storage Class', type: 'string', jsonPath: '.spec.pvcStorageClass', priority: 1 },
      age,
    ],
  });

export const pipelineCrd = (): KubeObject =>
  crd({
    kind: 'Pipeline',
    plural: 'pipelines',
    description: 'A multi-stage workflow (DAG) triggered by events of its source Stream.',
    spec: { properties: pipelineSpecSchema, required: ['sourceStream', 'stages', 'maxParallel'] },
    status: { stages: { type: 'integer', minimum: 0, description: 'Number of stages at observedGeneration.' } },
    columns: [
      { name: 'Source Stream', type: 'string', jsonPath: '.spec.sourceStream' },
      { name: 'Triggers', type: 'string', jsonPath: '.spec.triggers' },
      { name: 'Max Parallel', type: 'integer', jsonPath: '.spec.maxParallel' },
      { name: 'Stages', type: 'integer', jsonPath: '.status.stages' },
      ready('Accepted'),
      age,
    ],
  });

export const tokenCrd = (): KubeObject =>
  crd({
    kind: 'Token',
    plural: 'tokens',
    description: 'An access token; the operator stores its JWT and HMAC key in the Secret of the same name.',
    spec: { properties: tokenSpecSchema, required: [] },
    status: {
      secretName: { type: 'string', description: 'The Secret holding `token` (the JWT) and `hmac_key`.' },
      tokenId: { type: 'string', description: 'The `jti` claim of the current JWT.' },
    },
    columns: [
      { name: 'All', type: 'boolean', jsonPath: '.spec.all' },
      { name: 'Secret', type: 'string', jsonPath: '.status.secretName' },
      { name: 'Token ID', type: 'string', jsonPath: '.status.tokenId' },
      ready(),
      age,
    ],
  });

/** All three, in a stable order (file names of the chart's crds/ directory). */
export function hadronCrds(): Array<{ file: string; object: KubeObject }> {
  return [
    { file: 'streams.hadron.rs.yaml', object: streamCrd() },
    { file: 'pipelines.hadron.rs.yaml', object: pipelineCrd() },
    { file: 'tokens.hadron.rs.yaml', object: tokenCrd() },
  ];
}
