/**
 * Parsing, defaulting and validation of Stream, Pipeline and Token documents and token Secrets.
 * Shared by the local manifests reader (`hadron dev`, `HADRON_MANIFESTS`) and the admission
 * webhook, so a manifest is accepted or rejected with the same messages everywhere.
 *
 * Pipeline messages are exactly those of the original webhook (reference §3.6); duplicate stage
 * names, trigger syntax and start points are checked too (the original did not).
 */
import {
  ALLOW_DESTRUCTIVE_UPDATE,
  API_VERSION,
  DEFAULT_RETENTION_SECONDS,
  type ObjectMeta,
  type Pipeline,
  type PipelineStage,
  type PubSub,
  type Stream,
  type StreamTls,
  type DeadLetterPolicy,
  type Token,
  type Trigger,
  type TokenSecret,
} from './types.js';
import { checkTriggerPattern } from './matcher.js';

export type Parsed<T> = { ok: true; value: T } | { ok: false; errors: string[] };

const RFC1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const RFC1123_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const QUANTITY = /^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E|m)?$/;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

class Collector {
  readonly errors: string[] = [];
  constructor(private readonly where: string) {}
  add(msg: string): void {
    this.errors.push(msg);
  }
  field(path: string, msg: string): void {
    this.errors.push(`${this.where}: ${path} ${msg}`);
  }
}

function stringList(c: Collector, v: unknown, path: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) {
    c.field(path, 'must be a list of strings');
    return [];
  }
  return v as string[];
}

function meta(c: Collector, doc: Obj): ObjectMeta {
  const m = doc.metadata;
  if (!isObj(m) || typeof m.name !== 'string' || m.name === '') {
    c.field('metadata.name', 'is required');
    return { name: '' };
  }
  if (m.name.length > 63 || !RFC1123_LABEL.test(m.name)) {
    c.field('metadata.name', `'${m.name}' must be a RFC 1123 label (lower case alphanumerics and '-', at most 63 characters)`);
  }
  const out: ObjectMeta = { name: m.name };
  if (typeof m.namespace === 'string') out.namespace = m.namespace;
  if (isObj(m.labels)) out.labels = m.labels as Record<string, string>;
  if (isObj(m.annotations)) out.annotations = m.annotations as Record<string, string>;
  if (typeof m.generation === 'number') out.generation = m.generation;
  if (typeof m.resourceVersion === 'string') out.resourceVersion = m.resourceVersion;
  if (typeof m.uid === 'string') out.uid = m.uid;
  return out;
}

function nonNegInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

// ---------------------------------------------------------------------------------------------

/** `spec.replicationFactor` when the manifest leaves it out: min(2, partitions) (DESIGN.md, docs/replication.md). */
export function defaultReplicationFactor(partitions: number): number {
  return Math.min(2, partitions);
}

export function parseStream(doc: Obj): Parsed<Stream> {
  const c = new Collector(`Stream ${isObj(doc.metadata) ? String(doc.metadata.name) : '?'}`);
  const metadata = meta(c, doc);
  const s = doc.spec;
  if (!isObj(s)) {
    c.field('spec', 'is required');
    return { ok: false, errors: c.errors };
  }
  if (!nonNegInt(s.partitions) || s.partitions < 1) c.field('spec.partitions', `must be an integer ≥ 1, got ${JSON.stringify(s.partitions)}`);
  else if (s.partitions > 1024) c.field('spec.partitions', `must be ≤ 1024, got ${s.partitions}`);
  if (s.debug !== undefined && typeof s.debug !== 'boolean') c.field('spec.debug', 'must be a boolean');
  const partitions = nonNegInt(s.partitions) && s.partitions >= 1 ? s.partitions : 1;
  let replicationFactor = defaultReplicationFactor(partitions);
  if (s.replicationFactor !== undefined && s.replicationFactor !== null) {
    const r = s.replicationFactor;
    if (!nonNegInt(r) || r < 1) c.field('spec.replicationFactor', `must be an integer ≥ 1, got ${JSON.stringify(r)}`);
    else if (r > partitions) c.field('spec.replicationFactor', `must be ≤ spec.partitions (${partitions}): each copy lives on another partition's pod, got ${r}`);
    else replicationFactor = r;
  }
  let retentionPolicy: Stream['spec']['retentionPolicy'] = { strategy: 'time', retentionSeconds: DEFAULT_RETENTION_SECONDS };
  if (s.retentionPolicy !== undefined && s.retentionPolicy !== null) {
    const rp = s.retentionPolicy;
    if (!isObj(rp)) c.field('spec.retentionPolicy', 'must be an object');
    else {
      if (rp.strategy !== 'time' && rp.strategy !== 'retain') {
        c.field('spec.retentionPolicy.strategy', `must be 'time' or 'retain', got ${JSON.stringify(rp.strategy)}`);
      }
      const secs = rp.retentionSeconds;
      if (secs !== undefined && secs !== null && !nonNegInt(secs)) {
        c.field('spec.retentionPolicy.retentionSeconds', `must be a non-negative integer, got ${JSON.stringify(secs)}`);
      }
      retentionPolicy = {
        strategy: rp.strategy === 'retain' ? 'retain' : 'time',
        retentionSeconds: nonNegInt(secs) ? secs : DEFAULT_RETENTION_SECONDS,
      };
    }
  }
  if (s.image !== undefined && typeof s.image !== 'string') c.field('spec.image', 'must be a string');
  const size = s.pvcVolumeSize ?? '1Gi';
  if (typeof size !== 'string' || !QUANTITY.test(size)) c.field('spec.pvcVolumeSize', `must be a quantity like 5Gi, got ${JSON.stringify(size)}`);
  const modes = s.pvcAccessModes === undefined || s.pvcAccessModes === null ? null : stringList(c, s.pvcAccessModes, 'spec.pvcAccessModes');
  for (const m of modes ?? []) {
    if (!['ReadWriteOnce', 'ReadOnlyMany', 'ReadWriteMany', 'ReadWriteOncePod'].includes(m)) {
      c.field('spec.pvcAccessModes', `has unknown access mode '${m}'`);
    }
  }
  if (s.pvcStorageClass !== undefined && s.pvcStorageClass !== null && typeof s.pvcStorageClass !== 'string') {
    c.field('spec.pvcStorageClass', 'must be a string');
  }
  let tls: StreamTls | null = null;
  if (s.tls !== undefined && s.tls !== null) {
    if (!isObj(s.tls)) c.field('spec.tls', 'must be an object (e.g. {} or {secretName: my-cert})');
    else {
      const sn = s.tls.secretName;
      if (sn !== undefined && sn !== null && (typeof sn !== 'string' || !RFC1123_SUBDOMAIN.test(sn))) {
        c.field('spec.tls.secretName', `must be the name of a Secret (an RFC 1123 subdomain), got ${JSON.stringify(sn)}`);
      }
      tls = { secretName: typeof sn === 'string' ? sn : null };
    }
  }
  let deadLetter: DeadLetterPolicy | null = null;
  if (s.deadLetter !== undefined && s.deadLetter !== null) {
    const d = s.deadLetter;
    if (!isObj(d)) c.field('spec.deadLetter', 'must be an object {stream, maxAttempts, token}');
    else {
      if (typeof d.stream !== 'string' || !RFC1123_SUBDOMAIN.test(d.stream)) c.field('spec.deadLetter.stream', `must be the name of a Stream, got ${JSON.stringify(d.stream)}`);
      else if (isObj(doc.metadata) && d.stream === doc.metadata.name) c.field('spec.deadLetter.stream', 'must be another Stream (dead-lettering into the same Stream would redeliver the event forever)');
      if (!nonNegInt(d.maxAttempts) || d.maxAttempts < 1) c.field('spec.deadLetter.maxAttempts', `must be an integer ≥ 1, got ${JSON.stringify(d.maxAttempts)}`);
      if (typeof d.token !== 'string' || !RFC1123_SUBDOMAIN.test(d.token)) c.field('spec.deadLetter.token', `must be the name of a Token with pub on the dead-letter Stream, got ${JSON.stringify(d.token)}`);
      deadLetter = { stream: String(d.stream), maxAttempts: Number(d.maxAttempts), token: String(d.token) };
    }
  }
  if (c.errors.length) return { ok: false, errors: c.errors };
  return {
    ok: true,
    value: {
      apiVersion: API_VERSION,
      kind: 'Stream',
      metadata,
      spec: {
        partitions: s.partitions as number,
        replicationFactor,
        debug: s.debug === true,
        retentionPolicy,
        image: typeof s.image === 'string' ? s.image : '',
        pvcVolumeSize: size as string,
        pvcAccessModes: modes,
        pvcStorageClass: typeof s.pvcStorageClass === 'string' ? s.pvcStorageClass : null,
        tls,
        deadLetter,
      },
    },
  };
}

// ---------------------------------------------------------------------------------------------

function pubSub(c: Collector, v: unknown, path: string): PubSub | null {
  if (v === undefined || v === null) return null;
  if (!isObj(v)) {
    c.field(path, 'must be an object with `pub` and `sub` lists');
    return null;
  }
  return { pub: stringList(c, v.pub, `${path}.pub`), sub: stringList(c, v.sub, `${path}.sub`) };
}

export function parseToken(doc: Obj): Parsed<Token> {
  const c = new Collector(`Token ${isObj(doc.metadata) ? String(doc.metadata.name) : '?'}`);
  const metadata = meta(c, doc);
  const s = isObj(doc.spec) ? doc.spec : {};
  if (s.all !== undefined && typeof s.all !== 'boolean') c.field('spec.all', 'must be a boolean');
  const spec = {
    all: s.all === true,
    streams: pubSub(c, s.streams, 'spec.streams'),
    exchanges: pubSub(c, s.exchanges, 'spec.exchanges'),
    endpoints: pubSub(c, s.endpoints, 'spec.endpoints'),
  };
  if (c.errors.length) return { ok: false, errors: c.errors };
  return { ok: true, value: { apiVersion: API_VERSION, kind: 'Token', metadata, spec } };
}

// ---------------------------------------------------------------------------------------------

export function parsePipeline(doc: Obj): Parsed<Pipeline> {
  const c = new Collector(`Pipeline ${isObj(doc.metadata) ? String(doc.metadata.name) : '?'}`);
  const metadata = meta(c, doc);
  const s = doc.spec;
  if (!isObj(s)) {
    c.field('spec', 'is required');
    return { ok: false, errors: c.errors };
  }
  if (typeof s.sourceStream !== 'string' || s.sourceStream === '') c.field('spec.sourceStream', 'is required');
  const triggers = stringList(c, s.triggers, 'spec.triggers');
  const stages: PipelineStage[] = [];
  if (!Array.isArray(s.stages) || s.stages.length === 0) c.field('spec.stages', 'must list at least one stage');
  else {
    s.stages.forEach((st: unknown, i: number) => {
      if (!isObj(st) || typeof st.name !== 'string') {
        c.field(`spec.stages[${i}].name`, 'is required');
        return;
      }
      stages.push({
        name: st.name,
        after: stringList(c, st.after, `spec.stages[${i}].after`),
        dependencies: stringList(c, st.dependencies, `spec.stages[${i}].dependencies`),
      });
    });
  }
  if (s.maxParallel !== undefined && !nonNegInt(s.maxParallel)) c.field('spec.maxParallel', 'must be a non-negative integer');
  const sp = isObj(s.startPoint) ? s.startPoint : { location: 'beginning' };
  if (sp.location !== 'beginning' && sp.location !== 'latest' && sp.location !== 'offset') {
    c.field('spec.startPoint.location', `must be beginning, latest or offset, got ${JSON.stringify(sp.location)}`);
  }
  if (sp.location === 'offset' && !nonNegInt(sp.offset)) c.field('spec.startPoint.offset', 'is required (a non-negative integer) when location is offset');
  if (c.errors.length) return { ok: false, errors: c.errors };
  const value: Pipeline = {
    apiVersion: API_VERSION,
    kind: 'Pipeline',
    metadata,
    spec: {
      sourceStream: s.sourceStream as string,
      triggers,
      stages,
      maxParallel: (s.maxParallel as number | undefined) ?? 0,
      startPoint: { location: sp.location as 'beginning', offset: nonNegInt(sp.offset) ? sp.offset : null },
    },
  };
  const errors = validatePipeline(value);
  return errors.length ? { ok: false, errors } : { ok: true, value };
}

/** The semantic rules of the original webhook (reference §3.6), plus duplicate stages. */
export function validatePipeline(p: Pipeline): string[] {
  const name = p.metadata.name;
  const errors: string[] = [];
  const seenTriggers = new Set<string>();
  for (const t of p.spec.triggers) {
    if (seenTriggers.has(t)) errors.push(`trigger '${t}' of pipeline '${name}' is a duplicate and must be removed`);
    seenTriggers.add(t);
    const problem = checkTriggerPattern(t);
    if (problem) errors.push(`trigger '${t}' of pipeline '${name}' ${problem}`);
  }
  const stageNames = new Set<string>();
  for (const st of p.spec.stages) {
    if (stageNames.has(st.name)) errors.push(`stage '${st.name}' of pipeline ${name} is defined more than once`);
    stageNames.add(st.name);
    if (!RFC1123_LABEL.test(st.name)) {
      errors.push(
        `stage '${st.name}' of pipeline ${name} must be a RFC 1123 label consisting of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character`,
      );
    }
    if (st.name.length > 63) errors.push(`stage name '${st.name}' of pipeline ${name} may not exceed 63 characters`);
  }
  for (const st of p.spec.stages) {
    for (const d of st.dependencies) {
      if (!stageNames.has(d)) errors.push(`stage '${st.name}' depends upon stage '${d}' which does not exist in pipeline ${name}`);
    }
    for (const a of st.after) {
      if (!stageNames.has(a)) errors.push(`stage '${st.name}' must execute after stage '${a}' which does not exist in pipeline ${name}`);
    }
  }
  for (const node of findCycleNodes(p.spec.stages)) {
    errors.push(`stage '${node}' of pipeline ${name} creates a cycle and pipelines must be acyclic`);
  }
  if (!p.spec.stages.some((s) => s.dependencies.length === 0 && s.after.length === 0)) {
    errors.push(`pipeline ${name} has no entrypoint stage with no \`dependencies\` and no \`after\` stages`);
  }
  if (p.spec.maxParallel <= 0) errors.push(`max_parallel of pipeline ${name} must be > 0`);
  return errors;
}

/**
 * Stages that lie on a cycle of the dependencies+after graph (self-loops included), in spec
 * order: exactly the members of strongly connected components with more than one stage, plus
 * stages that name themselves (Tarjan's algorithm). Stages that merely depend on a cycle are not
 * on it and are not named; neither is a stage on a second path through the cycle missed (a
 * depth-first back-edge walk would miss it).
 */
export function findCycleNodes(stages: readonly PipelineStage[]): string[] {
  const edges = new Map<string, string[]>();
  for (const s of stages) edges.set(s.name, [...(edges.get(s.name) ?? []), ...s.dependencies, ...s.after]);
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const onCycle = new Set<string>();
  let next = 0;
  const connect = (n: string): void => {
    index.set(n, next);
    low.set(n, next);
    next++;
    stack.push(n);
    onStack.add(n);
    for (const m of edges.get(n) ?? []) {
      if (!edges.has(m)) continue;
      if (!index.has(m)) {
        connect(m);
        low.set(n, Math.min(low.get(n)!, low.get(m)!));
      } else if (onStack.has(m)) low.set(n, Math.min(low.get(n)!, index.get(m)!));
    }
    if (low.get(n) !== index.get(n)) return;
    const scc: string[] = [];
    for (let m = stack.pop()!; ; m = stack.pop()!) {
      onStack.delete(m);
      scc.push(m);
      if (m === n) break;
    }
    if (scc.length > 1 || (edges.get(n) ?? []).includes(n)) for (const m of scc) onCycle.add(m);
  };
  for (const s of stages) if (!index.has(s.name)) connect(s.name);
  return stages.map((s) => s.name).filter((n, i, a) => onCycle.has(n) && a.indexOf(n) === i);
}

/** Update rule: removing stages needs the `hadron.rs/allow-destructive-update` annotation. */
export function validatePipelineUpdate(oldP: Pipeline, newP: Pipeline): string[] {
  const kept = new Set(newP.spec.stages.map((s) => s.name));
  const removed = oldP.spec.stages.map((s) => s.name).filter((n) => !kept.has(n));
  if (removed.length === 0 || newP.metadata.annotations?.[ALLOW_DESTRUCTIVE_UPDATE] !== undefined) return [];
  return [
    `pipeline ${newP.metadata.name} would incur data loss if stages [${removed.map((r) => JSON.stringify(r)).join(', ')}] are removed, set annotation ${ALLOW_DESTRUCTIVE_UPDATE} to allow this change`,
  ];
}

// ---------------------------------------------------------------------------------------------

/** A v1 Secret made for a Token: labelled by the operator, holding `hmac_key` (and `token`). */
export function parseTokenSecret(doc: Obj): Parsed<TokenSecret> | null {
  const m = doc.metadata;
  if (!isObj(m) || typeof m.name !== 'string') return null;
  const labels = isObj(m.labels) ? m.labels : {};
  if (labels.app !== 'hadron' || labels['hadron.rs/controlled-by'] !== 'hadron-operator') return null;
  // The operator's TLS and replication-key Secrets for Streams carry the same labels; they hold no token.
  if (doc.type === 'kubernetes.io/tls' || doc.type === 'hadron.rs/replication-key') return null;
  const data = isObj(doc.data) ? doc.data : {};
  const stringData = isObj(doc.stringData) ? doc.stringData : {};
  if (typeof data.hmac_key !== 'string') return { ok: false, errors: [`Secret ${m.name}: data.hmac_key is missing`] };
  const hmacKey = Buffer.from(data.hmac_key, 'base64');
  if (hmacKey.length === 0) return { ok: false, errors: [`Secret ${m.name}: data.hmac_key is empty or not base64`] };
  const token =
    typeof data.token === 'string' ? Buffer.from(data.token, 'base64').toString('utf8') : typeof stringData.token === 'string' ? stringData.token : undefined;
  return { ok: true, value: { name: m.name, hmacKey, token } };
}

export type AnyResource =
  | { kind: 'Stream'; value: Stream }
  | { kind: 'Pipeline'; value: Pipeline }
  | { kind: 'Token'; value: Token }
  | { kind: 'Trigger'; value: Trigger }
  | { kind: 'Secret'; value: TokenSecret };

function posInt(c: Collector, v: unknown, field: string, def: number, max = Number.MAX_SAFE_INTEGER): number {
  if (v === undefined || v === null) return def;
  if (!nonNegInt(v) || v < 1 || v > max) {
    c.field(field, `must be an integer from 1 to ${max}, got ${JSON.stringify(v)}`);
    return def;
  }
  return v;
}

/** A Trigger (docs/http.md): the same rules for local manifests and the admission webhook. */
export function parseTrigger(doc: Obj): Parsed<Trigger> {
  const c = new Collector(`Trigger ${isObj(doc.metadata) ? String(doc.metadata.name) : '?'}`);
  const metadata = meta(c, doc);
  const s = doc.spec;
  if (!isObj(s)) {
    c.field('spec', 'is required');
    return { ok: false, errors: c.errors };
  }
  if (typeof s.sourceStream !== 'string' || !RFC1123_SUBDOMAIN.test(s.sourceStream)) c.field('spec.sourceStream', 'is required (the name of a Stream)');
  const f = isObj(s.filter) ? s.filter : {};
  const types = stringList(c, f.types, 'spec.filter.types');
  for (const t of types) {
    const problem = checkTriggerPattern(t);
    if (problem) c.field('spec.filter.types', `pattern '${t}' ${problem}`);
  }
  let sink: Trigger['spec']['sink'] = { uri: null, ref: null };
  if (!isObj(s.sink)) c.field('spec.sink', 'is required: {uri: http://…} or {ref: {name: <Service>, port, path}}');
  else {
    const hasUri = s.sink.uri !== undefined && s.sink.uri !== null;
    const hasRef = s.sink.ref !== undefined && s.sink.ref !== null;
    if (hasUri === hasRef) c.field('spec.sink', 'needs exactly one of uri and ref');
    else if (hasUri) {
      let ok = false;
      try {
        ok = typeof s.sink.uri === 'string' && ['http:', 'https:'].includes(new URL(s.sink.uri).protocol);
      } catch {
        ok = false;
      }
      if (!ok) c.field('spec.sink.uri', `must be an absolute http:// or https:// URL, got ${JSON.stringify(s.sink.uri)}`);
      sink = { uri: String(s.sink.uri), ref: null };
    } else {
      const r = s.sink.ref;
      if (!isObj(r) || typeof r.name !== 'string' || !RFC1123_LABEL.test(r.name)) c.field('spec.sink.ref.name', 'must be the name of a Service (an RFC 1123 label)');
      const port = isObj(r) ? posInt(c, r.port, 'spec.sink.ref.port', 80, 65535) : 80;
      const path = isObj(r) && typeof r.path === 'string' ? r.path : '/';
      if (!path.startsWith('/')) c.field('spec.sink.ref.path', 'must start with /');
      sink = { uri: null, ref: { name: isObj(r) ? String(r.name) : '', port, path } };
    }
  }
  const sp = isObj(s.startPoint) ? s.startPoint : { location: 'latest' };
  if (sp.location !== 'beginning' && sp.location !== 'latest' && sp.location !== 'offset') {
    c.field('spec.startPoint.location', `must be beginning, latest or offset, got ${JSON.stringify(sp.location)}`);
  }
  if (sp.location === 'offset' && !nonNegInt(sp.offset)) c.field('spec.startPoint.offset', 'is required (a non-negative integer) when location is offset');
  const parallelism = posInt(c, s.parallelism, 'spec.parallelism', 1, 1000);
  const timeoutMs = posInt(c, s.timeoutMs, 'spec.timeoutMs', 10_000, 3_600_000);
  const r = isObj(s.retry) ? s.retry : {};
  const retry = {
    maxAttempts: posInt(c, r.maxAttempts, 'spec.retry.maxAttempts', 5, 1000),
    backoffMs: posInt(c, r.backoffMs, 'spec.retry.backoffMs', 500, 3_600_000),
    maxBackoffMs: posInt(c, r.maxBackoffMs, 'spec.retry.maxBackoffMs', 30_000, 3_600_000),
  };
  let deadLetter: Trigger['spec']['deadLetter'] = null;
  if (s.deadLetter !== undefined && s.deadLetter !== null) {
    const d = s.deadLetter;
    if (!isObj(d) || typeof d.stream !== 'string' || !RFC1123_SUBDOMAIN.test(d.stream)) c.field('spec.deadLetter.stream', 'must be the name of a Stream');
    if (!isObj(d) || typeof d.token !== 'string' || !RFC1123_SUBDOMAIN.test(d.token)) c.field('spec.deadLetter.token', 'must be the name of a Token with pub on the dead-letter Stream');
    if (isObj(d)) deadLetter = { stream: String(d.stream), token: String(d.token) };
  }
  let reply: Trigger['spec']['reply'] = null;
  if (s.reply !== undefined && s.reply !== null) {
    const d = s.reply;
    if (!isObj(d) || typeof d.stream !== 'string' || !RFC1123_SUBDOMAIN.test(d.stream)) c.field('spec.reply.stream', 'must be the name of a Stream');
    if (!isObj(d) || typeof d.token !== 'string' || !RFC1123_SUBDOMAIN.test(d.token)) c.field('spec.reply.token', 'must be the name of a Token with pub on the reply Stream');
    if (isObj(d)) reply = { stream: String(d.stream), token: String(d.token) };
  }
  if (c.errors.length) return { ok: false, errors: c.errors };
  return {
    ok: true,
    value: {
      apiVersion: API_VERSION,
      kind: 'Trigger',
      metadata,
      spec: {
        sourceStream: s.sourceStream as string,
        filter: { types },
        sink,
        startPoint: { location: sp.location as 'beginning', offset: nonNegInt(sp.offset) ? sp.offset : null },
        parallelism,
        timeoutMs,
        retry,
        deadLetter,
        reply,
      },
    },
  };
}

/**
 * Classifies and parses one YAML document. Returns null for documents Hadron does not read
 * (other kinds, unlabelled Secrets, empty documents).
 */
export function parseDocument(doc: unknown): Parsed<AnyResource> | null {
  if (!isObj(doc)) return null;
  if (doc.apiVersion === 'v1' && doc.kind === 'Secret') {
    const r = parseTokenSecret(doc);
    if (r === null) return null;
    return r.ok ? { ok: true, value: { kind: 'Secret', value: r.value } } : r;
  }
  if (doc.apiVersion !== API_VERSION) return null;
  switch (doc.kind) {
    case 'Stream': {
      const r = parseStream(doc);
      return r.ok ? { ok: true, value: { kind: 'Stream', value: r.value } } : r;
    }
    case 'Pipeline': {
      const r = parsePipeline(doc);
      return r.ok ? { ok: true, value: { kind: 'Pipeline', value: r.value } } : r;
    }
    case 'Token': {
      const r = parseToken(doc);
      return r.ok ? { ok: true, value: { kind: 'Token', value: r.value } } : r;
    }
    case 'Trigger': {
      const r = parseTrigger(doc);
      return r.ok ? { ok: true, value: { kind: 'Trigger', value: r.value } } : r;
    }
    default:
      return { ok: false, errors: [`unknown kind ${JSON.stringify(doc.kind)} for ${API_VERSION}`] };
  }
}
