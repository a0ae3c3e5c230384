/**
 * Where and how a Stream's partition pods run (issue 12): resources, priority class, node
 * selection and tolerations from the Stream spec; topology spread across nodes (and zones) so a
 * partition and the pods holding its replicas do not share a node; and a PodDisruptionBudget
 * `{stream}` with `maxUnavailable: 1`, so a node drain takes at most one partition pod down at a
 * time (the StatefulSet's rolling update already replaces one pod at a time, waiting for each to
 * be Ready).
 *
 * The fields are read from the raw spec: the API server validated them against the CRD schema
 * (packages/k8s/src/crds.ts `streamSchedulingSchema`), and the operator passes them to the pod
 * template verbatim.
 *
 *   spec.resources          {requests, limits} of the partition container
 *   spec.priorityClassName  the pods' PriorityClass
 *   spec.nodeSelector       the pods' nodeSelector
 *   spec.tolerations        the pods' tolerations
 *   spec.spread             'preferred' (default: ScheduleAnyway) or 'required' (DoNotSchedule:
 *                           a pod stays Pending rather than share a node with another partition)
 */
import type { KubeObject } from '@hadron/k8s';
import { ownerRef, streamLabels } from './objects.js';

type Raw = Record<string, unknown>;

export type Spread = 'preferred' | 'required';

/** The pod-placement settings of a Stream, as the operator applies them. */
export interface StreamScheduling {
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  priorityClassName?: string;
  nodeSelector?: Record<string, string>;
  tolerations?: Raw[];
  spread: Spread;
}

const isObj = (v: unknown): v is Raw => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Reads the scheduling fields of a raw Stream spec (validated by the CRD schema). */
export function streamScheduling(spec: Raw | undefined): StreamScheduling {
  const out: StreamScheduling = { spread: spec?.['spread'] === 'required' ? 'required' : 'preferred' };
  if (!spec) return out;
  const res = spec['resources'];
  if (isObj(res)) {
    const r: NonNullable<StreamScheduling['resources']> = {};
    for (const k of ['requests', 'limits'] as const) if (isObj(res[k]) && Object.keys(res[k]).length > 0) r[k] = Object.fromEntries(Object.entries(res[k]).map(([q, v]) => [q, String(v)]));
    if (r.requests || r.limits) out.resources = r;
  }
  if (typeof spec['priorityClassName'] === 'string' && spec['priorityClassName'] !== '') out.priorityClassName = spec['priorityClassName'];
  if (isObj(spec['nodeSelector']) && Object.keys(spec['nodeSelector']).length > 0) out.nodeSelector = Object.fromEntries(Object.entries(spec['nodeSelector']).map(([k, v]) => [k, String(v)]));
  if (Array.isArray(spec['tolerations']) && spec['tolerations'].length > 0) out.tolerations = spec['tolerations'].filter(isObj);
  return out;
}

/** Label keys the partition pods are spread over: nodes always, zones where nodes have them. */
export const SPREAD_TOPOLOGY_KEYS = { node: 'kubernetes.io/hostname', zone: 'topology.kubernetes.io/zone' } as const;

/** The pod-spec fields for `sch` (merged into the StatefulSet's pod template). */
export function podSchedulingFields(stream: string, sch: StreamScheduling): Raw {
  const matchLabels = streamLabels(stream);
  return {
    topologySpreadConstraints: [
      { maxSkew: 1, topologyKey: SPREAD_TOPOLOGY_KEYS.node, whenUnsatisfiable: sch.spread === 'required' ? 'DoNotSchedule' : 'ScheduleAnyway', labelSelector: { matchLabels } },
      // Zones are best effort: a cluster without zone labels must still schedule.
      { maxSkew: 1, topologyKey: SPREAD_TOPOLOGY_KEYS.zone, whenUnsatisfiable: 'ScheduleAnyway', labelSelector: { matchLabels } },
    ],
    ...(sch.priorityClassName ? { priorityClassName: sch.priorityClassName } : {}),
    ...(sch.nodeSelector ? { nodeSelector: sch.nodeSelector } : {}),
    ...(sch.tolerations ? { tolerations: sch.tolerations } : {}),
  };
}

/** PodDisruptionBudget `{stream}`: at most one partition pod evicted at a time. */
export function podDisruptionBudget(s: { kind: string; metadata: { name: string; uid?: string } }, namespace: string): KubeObject {
  const name = s.metadata.name;
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: { name, namespace, labels: streamLabels(name), ownerReferences: [ownerRef(s)] },
    spec: { maxUnavailable: 1, selector: { matchLabels: streamLabels(name) } },
  } as KubeObject;
}

/** What the Stream's status says about placement. */
export function schedulingStatus(stream: string, sch: StreamScheduling): Raw {
  return {
    podDisruptionBudget: stream,
    maxUnavailable: 1,
    spread: sch.spread,
    ...(sch.priorityClassName ? { priorityClassName: sch.priorityClassName } : {}),
    ...(sch.nodeSelector ? { nodeSelector: sch.nodeSelector } : {}),
    tolerations: sch.tolerations?.length ?? 0,
    ...(sch.resources ? { resources: sch.resources } : {}),
  };
}
