/**
 * One Pipeline on one partition (reference §2.9 with DESIGN.md's fixes). Pure domain logic over
 * the partition's store; stage workers are reached through `StageTransport`.
 *
 * Instances. Events of the source stream are scanned in order from the start point; an event
 * whose `type` matches a trigger starts an instance (root = that event). At most `maxParallel`
 * instances are active per partition, exactly: a scan stops at the event that fills the last
 * slot, and the scan position (`l`) is persisted atomically with the new instances.
 *
 * Stages. A stage of an instance is ready when it has no output, no delivery in flight, its
 * backoff has passed, and every stage in its `dependencies` and `after` has an output. It is
 * delivered to one idle worker of that stage with the root event and the outputs of its
 * `dependencies` (not `after`). Per (instance, stage):
 *   ready ──deliver──▶ delivered ──ack(output)──▶ persisting ──fsync──▶ done (never runs again)
 *                        ├──nack──▶ ready after exponential backoff (attempts counted)
 *                        ├──ack deadline──▶ ready at once, for another worker; the late reply
 *                        │                  of the silent worker is discarded
 *                        └──worker gone──▶ ready at once
 * A worker becomes idle again only after its ack's output is on disk, so any later delivery to
 * it proves its earlier acks are durable. When every stage of the *current* spec has an output
 * the instance is complete and its stored data is deleted.
 */
import { randomUUID } from 'node:crypto';
import { HadronError, exponentialDelay, matchesTriggers, type Logger, type Pipeline } from '@hadron/core';
import { checkEventBytes, encodeEvent, eventType } from '@hadron/proto';
import type { DeadLetterHook } from '../dead-letter.js';
import { metaKeys, readU64, u64, type MetaOp } from '../storage/layout.js';
import type { PartitionStore } from '../storage/partition-store.js';
import { ClientTextLog } from '../client-text-log.js';

export interface StageDelivery {
  stage: string;
  root: Buffer;
  /** Outputs of the stage's `dependencies`, in the order declared. */
  inputs: Array<[string, Buffer]>;
  attempt: number;
  offset: number;
}

export interface StageTransport {
  send(d: StageDelivery): Promise<void>;
  fail(err: unknown): void;
}

export interface StageHandle {
  readonly id: string;
  /**
   * Acks the delivery in flight to this worker. With `offset` (> 0) only if it names that
   * delivery's instance (its root offset); otherwise ignored and counted (issue 14 item 9).
   */
  ack(output: Buffer, offset?: number): void;
  nack(reason: string, offset?: number): void;
  leave(): void;
}

export interface PipelineMetricsSink {
  activeInstances(pipeline: string, n: number): void;
  pipelineScanned(pipeline: string, offset: number): void;
  stageMembers(pipeline: string, stage: string, n: number): void;
  stageCompleted(pipeline: string, stage: string, seconds: number): void;
  stageRedelivered(pipeline: string, stage: string, reason: 'nack' | 'timeout' | 'disconnect'): void;
  instanceCompleted(pipeline: string): void;
  /** A stored event no decoder accepts was skipped as a trigger candidate. */
  undecodableSkipped?(pipeline: string): void;
  /** An ack/nack named a delivery other than the one in flight to that worker. */
  ackMismatch?(pipeline: string, stage: string): void;
  /** A log line with client-provided text was dropped by the rate limit. */
  clientTextSuppressed?(): void;
}

interface Worker {
  id: string;
  stage: string;
  transport: StageTransport;
  status: 'idle' | 'busy' | 'stale' | 'gone';
  /** Instance offset of the delivery this worker went stale on. */
  staleOffset?: number;
}

interface StageRun {
  attempts: number;
  notBefore: number;
  avoid: string | undefined;
  inflight: { worker: Worker; timer: NodeJS.Timeout; since: number } | undefined;
  persisting: boolean;
  /** Why the last delivery failed, for dead-lettering. */
  lastError?: string;
}

interface Instance {
  offset: number;
  root: Buffer;
  outputs: Map<string, Buffer>;
  runs: Map<string, StageRun>;
}

export interface PipelineControllerOptions {
  store: PartitionStore;
  logger: Logger;
  metrics: PipelineMetricsSink;
  ackDeadlineMs: number;
  nackBackoff: { baseMs: number; maxMs: number };
  onFatal: (err: unknown) => void;
  /** The Stream's dead-letter policy (dead-letter.ts). */
  deadLetter?: DeadLetterHook;
}

/** Completed instances a controller remembers for `status()` (in memory, since it started). */
export const PIPELINE_HISTORY_SIZE = 100;

/** A completed instance as `status()` reports it. */
export interface CompletedInstance {
  offset: number;
  rootId: string;
  completedAtMs: number;
  stages: StageStatus[];
}

export interface StageStatus {
  name: string;
  state: 'waiting' | 'ready' | 'delivered' | 'done';
  attempts: number;
  /** Active instances: the stored output of a done stage (an encoded Event). */
  output?: Buffer;
}

export class PipelineController {
  private readonly history: CompletedInstance[] = [];
  private spec: Pipeline['spec'];
  private readonly instances = new Map<number, Instance>();
  /**
   * True while `instances` was filled in increasing offset order (always, so far: recovery reads
   * them in key order and the scan moves forward), so a delivery pass can walk the map as it is
   * instead of sorting its keys on every pass.
   */
  private instancesInOrder = true;
  private highestInstance = 0;
  private readonly workers = new Map<string, Map<string, Worker>>();
  private scanned = 0;
  private scanning = false;
  private rescan = false;
  private passQueued = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private rr = 0;
  private readonly unsubscribe: () => void;
  private readonly textLog: ClientTextLog;

  constructor(
    readonly name: string,
    pipeline: Pipeline,
    private readonly o: PipelineControllerOptions,
  ) {
    this.spec = pipeline.spec;
    // Keyed by stage: the controller is per pipeline, and stages are few and fixed by the spec.
    this.textLog = new ClientTextLog({ logger: o.logger, onSuppressed: () => o.metrics.clientTextSuppressed?.() });
    this.recover();
    this.unsubscribe = o.store.onAppend(() => this.scan());
  }

  private get maxParallel(): number {
    return this.spec.maxParallel > 0 ? this.spec.maxParallel : 50;
  }

  /** Loads `l`, instances and outputs; applies the start point on first start. */
  private recover(): void {
    const meta = this.o.store.meta;
    const l = meta.get(metaKeys.pipelineScanned(this.name));
    if (l) this.scanned = readU64(l, 0);
    else {
      const sp = this.spec.startPoint;
      const store = this.o.store;
      // `offset n` starts AT n, like stream subscriptions (the original started at n+1).
      // An offset beyond the log end starts at the end (like stream subscriptions): a stored
      // position may never lie past the log, or a power loss could make the pipeline skip events.
      this.scanned =
        sp.location === 'beginning'
          ? store.firstOffset - 1
          : sp.location === 'latest'
            ? store.lastOffset
            : Math.min(Math.max(0, (sp.offset ?? 1) - 1), store.lastOffset);
      void meta
        .commit([{ kind: 'put', key: metaKeys.pipelineScanned(this.name), value: u64(this.scanned) }], { sync: true, afterLog: this.scanned })
        .catch(this.unlessDiskFull('storing the start point'));
    }
    const prefix = metaKeys.pipelinePrefix(this.name);
    for (const [k, v] of meta.scan(`${prefix}a/`)) {
      const offset = Number(k.slice(prefix.length + 2));
      this.addInstance({ offset, root: v, outputs: new Map(), runs: new Map() });
    }
    for (const [k, v] of meta.scan(`${prefix}o/`)) {
      const rest = k.slice(prefix.length + 2);
      const offset = Number(rest.slice(0, 20));
      const stage = rest.slice(21);
      this.instances.get(offset)?.outputs.set(stage, v);
    }
    this.o.metrics.pipelineScanned(this.name, this.scanned);
    this.pruneStages();
    this.pruneComplete();
    this.o.metrics.activeInstances(this.name, this.instances.size);
  }

  /** Applies a changed spec: new stages run for active instances, removed stages' outputs go. */
  update(pipeline: Pipeline): void {
    this.spec = pipeline.spec;
    const stages = new Set(this.spec.stages.map((s) => s.name));
    for (const [stage, ws] of this.workers) {
      if (stages.has(stage)) continue;
      for (const w of ws.values()) {
        w.transport.fail(new Error(`stage ${stage} was removed from pipeline ${this.name}`));
        this.leave(w);
      }
    }
    this.pruneStages();
    this.pruneComplete();
    this.o.metrics.activeInstances(this.name, this.instances.size);
    this.scan();
    this.pass();
  }

  /** Deletes stored outputs of stages no longer in the spec. */
  private pruneStages(): void {
    const stages = new Set(this.spec.stages.map((s) => s.name));
    const ops: MetaOp[] = [];
    for (const inst of this.instances.values()) {
      for (const stage of [...inst.outputs.keys()]) {
        if (stages.has(stage)) continue;
        inst.outputs.delete(stage);
        ops.push({ kind: 'del', key: metaKeys.pipelineOutput(this.name, inst.offset, stage) });
      }
      for (const [stage, run] of inst.runs) {
        if (!stages.has(stage)) {
          if (run.inflight) clearTimeout(run.inflight.timer);
          inst.runs.delete(stage);
        }
      }
    }
    if (ops.length) void this.o.store.meta.commit(ops, { sync: true }).catch(this.unlessDiskFull('deleting outputs of removed stages'));
  }

  /**
   * Error handler for writes that may simply be lost on a full volume (recovery redoes them):
   * DISK_FULL is logged, anything else is fatal.
   */
  private unlessDiskFull(what: string): (err: unknown) => void {
    return (err) => {
      if (err instanceof HadronError && err.code === 'DISK_FULL') this.o.logger.warn({ err, pipeline: this.name }, `volume full while ${what}; it is redone after a restart`);
      else this.o.onFatal(err);
    };
  }

  private isComplete(inst: Instance): boolean {
    return this.spec.stages.every((s) => inst.outputs.has(s.name));
  }

  private pruneComplete(): void {
    for (const inst of [...this.instances.values()]) if (this.isComplete(inst)) this.complete(inst);
  }

  private complete(inst: Instance): void {
    this.instances.delete(inst.offset);
    // A bounded history, so `pipeline status` can show what finished recently.
    this.history.push({
      offset: inst.offset,
      rootId: eventId(inst.root),
      completedAtMs: Date.now(),
      stages: this.spec.stages.map((st) => ({ name: st.name, state: 'done' as const, attempts: inst.runs.get(st.name)?.attempts ?? 1 })),
    });
    if (this.history.length > PIPELINE_HISTORY_SIZE) this.history.shift();
    const ops: MetaOp[] = [{ kind: 'del', key: metaKeys.pipelineInstance(this.name, inst.offset) }];
    for (const stage of inst.outputs.keys()) ops.push({ kind: 'del', key: metaKeys.pipelineOutput(this.name, inst.offset, stage) });
    // Not synced: if the deletion is lost in a crash, recovery finds the instance complete and
    // prunes it again.
    void this.o.store.meta.commit(ops, { sync: false }).catch(this.unlessDiskFull('deleting a completed instance'));
    this.o.metrics.instanceCompleted(this.name);
    this.o.metrics.activeInstances(this.name, this.instances.size);
  }

  // -------------------------------------------------------------------------------------------
  // Instance creation

  /** Scans new source events for triggers while there is room. */
  scan(): void {
    if (this.stopped) return;
    if (this.scanning) {
      this.rescan = true;
      return;
    }
    this.scanning = true;
    this.rescan = false;
    void this.scanLoop()
      .catch((err: unknown) => {
        this.o.logger.error({ err, pipeline: this.name }, 'pipeline scan failed; retrying in 1 s');
        this.retryLater(1000);
      })
      .finally(() => {
        this.scanning = false;
        if (this.rescan) this.scan();
      });
  }

  private async scanLoop(): Promise<void> {
    const store = this.o.store;
    while (!this.stopped && this.instances.size < this.maxParallel && this.scanned < store.lastOffset) {
      const events = await store.readFrom(this.scanned + 1, { maxEvents: 1000, maxBytes: 4 * 1024 * 1024 });
      if (events.length === 0 || this.stopped) return;
      const ops: MetaOp[] = [];
      const created: Instance[] = [];
      let l = this.scanned;
      for (const ev of events) {
        if (this.instances.size + created.length >= this.maxParallel) break;
        l = ev.offset;
        // An event stored before publish-time validation may be undecodable: it can trigger
        // nothing (no stage could decode it), and reading its type would throw and retry this
        // scan forever. Skip it, loudly (issue 14 item 4).
        const problem = checkEventBytes(ev.payload, 0, ev.payload.length, { cloudEvents: false });
        if (problem !== null) {
          this.o.metrics.undecodableSkipped?.(this.name);
          this.o.logger.error({ pipeline: this.name, offset: ev.offset, problem }, 'undecodable stored event skipped by the pipeline');
          continue;
        }
        if (!matchesTriggers(this.spec.triggers, eventType(ev.payload))) continue;
        const root = Buffer.from(ev.payload);
        created.push({ offset: ev.offset, root, outputs: new Map(), runs: new Map() });
        ops.push({ kind: 'put', key: metaKeys.pipelineInstance(this.name, ev.offset), value: root });
      }
      if (l === this.scanned) return;
      ops.push({ kind: 'put', key: metaKeys.pipelineScanned(this.name), value: u64(l) });
      // afterLog: the scan position and instances must not outlive, in a power loss, the events
      // they refer to (new events would take those offsets and never be scanned).
      await store.meta.commit(ops, { sync: created.length > 0, afterLog: l });
      if (this.stopped) return;
      this.scanned = l;
      for (const inst of created) this.addInstance(inst);
      this.o.metrics.pipelineScanned(this.name, l);
      this.o.metrics.activeInstances(this.name, this.instances.size);
      if (created.length) this.pass();
    }
  }

  // -------------------------------------------------------------------------------------------
  // Workers and deliveries

  join(stage: string, transport: StageTransport): StageHandle {
    const worker: Worker = { id: randomUUID(), stage, transport, status: 'idle' };
    let ws = this.workers.get(stage);
    if (!ws) this.workers.set(stage, (ws = new Map()));
    ws.set(worker.id, worker);
    this.o.metrics.stageMembers(this.name, stage, ws.size);
    this.pass();
    return {
      id: worker.id,
      ack: (output, offset) => this.onAck(worker, output, offset),
      nack: (reason, offset) => this.onNack(worker, reason, offset),
      leave: () => this.leave(worker),
    };
  }

  private addInstance(inst: Instance): void {
    if (inst.offset < this.highestInstance) this.instancesInOrder = false;
    this.highestInstance = Math.max(this.highestInstance, inst.offset);
    this.instances.set(inst.offset, inst);
  }

  /** Whether `stage` has a worker free for a delivery. */
  private hasIdleWorker(stage: string): boolean {
    const ws = this.workers.get(stage);
    if (ws) for (const w of ws.values()) if (w.status === 'idle') return true;
    return false;
  }

  /** Schedules one delivery pass (coalesced). */
  private pass(): void {
    if (this.passQueued || this.stopped) return;
    this.passQueued = true;
    queueMicrotask(() => {
      this.passQueued = false;
      this.deliver();
    });
  }

  private idleWorker(stage: string, avoid: string | undefined): Worker | undefined {
    const ws = this.workers.get(stage);
    if (!ws) return undefined;
    let fallback: Worker | undefined;
    const list = [...ws.values()];
    for (let i = 0; i < list.length; i++) {
      const w = list[(this.rr + i) % list.length]!;
      if (w.status !== 'idle') continue;
      if (w.id === avoid && list.length > 1) {
        fallback ??= w;
        continue;
      }
      this.rr++;
      return w;
    }
    return fallback;
  }

  private deliver(): void {
    const now = Date.now();
    let nextWake = Infinity;
    // Stages with a free worker. A stage with none can still have work in this pass (a retry to
    // schedule, a run to dead-letter), but only for a run that exists: a stage that never ran
    // is skipped at once. That keeps a pass over hundreds of active instances cheap (it was 11%
    // of a pipeline leader's CPU, issue 11).
    const idle = new Set(this.spec.stages.filter((st) => this.hasIdleWorker(st.name)).map((st) => st.name));
    const instances = this.instancesInOrder ? this.instances.values() : [...this.instances.keys()].sort((a, b) => a - b).map((o) => this.instances.get(o)!);
    for (const inst of instances) {
      for (const st of this.spec.stages) {
        if (inst.outputs.has(st.name)) continue;
        const run = inst.runs.get(st.name);
        if (!run && !idle.has(st.name)) continue;
        if (run?.inflight || run?.persisting) continue;
        if (!st.dependencies.every((d) => inst.outputs.has(d)) || !st.after.every((a) => inst.outputs.has(a))) continue;
        if (run && run.notBefore > now) {
          nextWake = Math.min(nextWake, run.notBefore);
          continue;
        }
        const maxAttempts = this.o.deadLetter?.maxAttempts();
        if (run && maxAttempts !== undefined && run.attempts >= maxAttempts) {
          this.deadLetter(inst, st.name, run);
          continue;
        }
        const worker = this.idleWorker(st.name, run?.avoid);
        if (!worker) continue;
        const r: StageRun = run ?? { attempts: 0, notBefore: 0, avoid: undefined, inflight: undefined, persisting: false };
        inst.runs.set(st.name, r);
        r.attempts++;
        worker.status = 'busy';
        if (!this.hasIdleWorker(st.name)) idle.delete(st.name);
        const timer = setTimeout(() => this.onDeadline(inst, st.name, worker), this.o.ackDeadlineMs);
        r.inflight = { worker, timer, since: now };
        const inputs = st.dependencies.map((d) => [d, inst.outputs.get(d)!] as [string, Buffer]);
        worker.transport
          .send({ stage: st.name, root: inst.root, inputs, attempt: r.attempts, offset: inst.offset })
          .catch(() => this.leave(worker));
      }
    }
    if (nextWake !== Infinity) this.retryLater(Math.max(1, nextWake - now));
  }

  private retryLater(ms: number): void {
    if (this.retryTimer || this.stopped) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.scan();
      this.pass();
    }, ms);
  }

  /** The instance and stage a worker is delivering, if any. */
  private holding(w: Worker): { inst: Instance; run: StageRun } | undefined {
    for (const inst of this.instances.values()) {
      const run = inst.runs.get(w.stage);
      if (run?.inflight?.worker === w) return { inst, run };
    }
    return undefined;
  }

  /**
   * The delivery a reply answers, if it answers the one in flight to `w` (`offset` > 0 must
   * name it); a stale worker's late reply is consumed here (the worker becomes idle).
   */
  private answered(w: Worker, kind: 'ack' | 'nack', offset: number | undefined, reason?: string): { inst: Instance; run: StageRun } | undefined {
    const named = offset !== undefined && offset > 0;
    if (w.status === 'stale') {
      if (named && offset !== w.staleOffset) return this.mismatch(w, kind, offset, reason);
      w.status = 'idle';
      w.staleOffset = undefined;
      this.pass();
      return undefined;
    }
    const h = this.holding(w);
    if (!h) {
      if (named) return this.mismatch(w, kind, offset, reason);
      this.o.logger.debug({ pipeline: this.name, stage: w.stage }, `pipeline ${kind} with no delivery outstanding; ignored`);
      return undefined;
    }
    if (named && offset !== h.inst.offset) return this.mismatch(w, kind, offset, reason);
    return h;
  }

  private mismatch(w: Worker, kind: 'ack' | 'nack', offset: number, reason: string | undefined): undefined {
    this.o.metrics.ackMismatch?.(this.name, w.stage);
    this.textLog.log('warn', w.stage, { pipeline: this.name, stage: w.stage, worker: w.id, offset }, 'reason', reason, `pipeline ${kind} does not name the delivery in flight to this worker; ignored`);
    return undefined;
  }

  private onAck(w: Worker, output: Buffer, offset?: number): void {
    const h = this.answered(w, 'ack', offset);
    if (!h) return;
    const { inst, run } = h;
    clearTimeout(run.inflight!.timer);
    const took = (Date.now() - run.inflight!.since) / 1000;
    run.inflight = undefined;
    run.persisting = true;
    const stage = w.stage;
    this.o.store.meta
      .commit([{ kind: 'put', key: metaKeys.pipelineOutput(this.name, inst.offset, stage), value: output }], { sync: true, afterLog: inst.offset })
      .then(() => {
        run.persisting = false;
        if (w.status === 'busy') w.status = 'idle';
        if (this.stopped || this.instances.get(inst.offset) !== inst) return;
        inst.outputs.set(stage, output);
        inst.runs.delete(stage);
        this.o.metrics.stageCompleted(this.name, stage, took);
        if (this.isComplete(inst)) {
          this.complete(inst);
          this.scan();
        }
        this.pass();
      }, (err: unknown) => {
        if (!(err instanceof HadronError && err.code === 'DISK_FULL')) {
          this.o.onFatal(err);
          return;
        }
        // The output could not be stored: run the stage again once there may be room.
        run.persisting = false;
        if (w.status === 'busy') w.status = 'idle';
        run.notBefore = Date.now() + 1000;
        this.o.logger.warn({ err, pipeline: this.name, stage, offset: inst.offset }, 'volume full: stage output not stored; the stage runs again');
        this.pass();
      });
  }

  /**
   * maxAttempts deliveries of this stage failed: the root event goes to the dead-letter Stream
   * and the stage is acked with that dead-lettered event (root + deadletter* attributes) as its
   * output, so the instance completes and dependent stages can tell. Until the publish and the
   * output are stored nothing changes (retried with backoff).
   */
  private deadLetter(inst: Instance, stage: string, run: StageRun): void {
    run.persisting = true;
    const origin = { kind: 'stage' as const, consumer: `${this.name}/${stage}`, attempts: run.attempts, lastError: run.lastError ?? 'unknown' };
    this.o
      .deadLetter!.send([{ offset: inst.offset, payload: inst.root }], origin)
      .then((sent) => {
        const output = encodeEvent(sent[0]!);
        return this.o.store.meta.commit([{ kind: 'put', key: metaKeys.pipelineOutput(this.name, inst.offset, stage), value: output }], { sync: true, afterLog: inst.offset }).then(() => output);
      })
      .then(
        (output) => {
          run.persisting = false;
          if (this.stopped || this.instances.get(inst.offset) !== inst) return;
          inst.outputs.set(stage, output);
          inst.runs.delete(stage);
          if (this.isComplete(inst)) {
            this.complete(inst);
            this.scan();
          }
          this.pass();
        },
        (err: unknown) => {
          run.persisting = false;
          const delay = Math.max(100, exponentialDelay(run.attempts, this.o.nackBackoff));
          run.notBefore = Date.now() + delay;
          this.o.logger.error({ err, pipeline: this.name, stage, offset: inst.offset, retryInMs: delay }, 'dead-lettering a pipeline stage failed; retried');
          this.retryLater(delay);
        },
      );
  }

  private onNack(w: Worker, reason: string, offset?: number): void {
    const h = this.answered(w, 'nack', offset, reason);
    if (!h) return;
    const { inst, run } = h;
    clearTimeout(run.inflight!.timer);
    run.inflight = undefined;
    w.status = 'idle';
    const delay = exponentialDelay(run.attempts, this.o.nackBackoff);
    run.notBefore = Date.now() + delay;
    run.avoid = w.id;
    run.lastError = `nacked: ${reason}`;
    this.o.metrics.stageRedelivered(this.name, w.stage, 'nack');
    this.textLog.log('info', w.stage, { pipeline: this.name, stage: w.stage, offset: inst.offset, attempt: run.attempts, retryInMs: delay }, 'reason', reason, 'pipeline stage nacked');
    this.pass();
  }

  private onDeadline(inst: Instance, stage: string, w: Worker): void {
    const run = inst.runs.get(stage);
    if (!run?.inflight || run.inflight.worker !== w) return;
    run.inflight = undefined;
    run.avoid = w.id;
    run.notBefore = 0;
    w.status = 'stale';
    w.staleOffset = inst.offset;
    run.lastError = `ack deadline of ${this.o.ackDeadlineMs} ms exceeded`;
    this.o.metrics.stageRedelivered(this.name, stage, 'timeout');
    this.o.logger.warn({ pipeline: this.name, stage, offset: inst.offset, attempt: run.attempts }, 'pipeline stage ack deadline exceeded; handing it to another worker');
    this.pass();
  }

  private leave(w: Worker): void {
    if (w.status === 'gone') return;
    const h = this.holding(w);
    w.status = 'gone';
    const ws = this.workers.get(w.stage);
    ws?.delete(w.id);
    this.o.metrics.stageMembers(this.name, w.stage, ws?.size ?? 0);
    if (ws && ws.size === 0) this.workers.delete(w.stage);
    if (h) {
      clearTimeout(h.run.inflight!.timer);
      h.run.inflight = undefined;
      h.run.notBefore = 0;
      h.run.avoid = w.id;
      h.run.lastError = 'the worker disconnected before acking';
      this.o.metrics.stageRedelivered(this.name, w.stage, 'disconnect');
    }
    this.pass();
  }

  // -------------------------------------------------------------------------------------------

  status(): { lastOffsetProcessed: number; instances: Array<{ offset: number; rootId: string; stages: StageStatus[] }>; completed: CompletedInstance[] } {
    const offsets = [...this.instances.keys()].sort((a, b) => a - b);
    return {
      completed: [...this.history].reverse(),
      lastOffsetProcessed: this.scanned,
      instances: offsets.map((offset) => {
        const inst = this.instances.get(offset)!;
        return {
          offset,
          rootId: eventId(inst.root),
          stages: this.spec.stages.map((st) => {
            const run = inst.runs.get(st.name);
            const done = inst.outputs.has(st.name);
            const deps = st.dependencies.every((d) => inst.outputs.has(d)) && st.after.every((a) => inst.outputs.has(a));
            const state: StageStatus['state'] = done ? 'done' : run?.inflight || run?.persisting ? 'delivered' : deps ? 'ready' : 'waiting';
            const output = inst.outputs.get(st.name);
            return { name: st.name, state, attempts: run?.attempts ?? (done ? 1 : 0), ...(output ? { output } : {}) };
          }),
        };
      }),
    };
  }

  get activeCount(): number {
    return this.instances.size;
  }

  /** Stops the controller; with `deleteState` removes everything stored for the pipeline. */
  async stop(opts: { deleteState: boolean; reason: Error }): Promise<void> {
    this.stopped = true;
    this.unsubscribe();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    for (const inst of this.instances.values()) for (const r of inst.runs.values()) if (r.inflight) clearTimeout(r.inflight.timer);
    for (const ws of this.workers.values()) for (const w of ws.values()) w.transport.fail(opts.reason);
    this.workers.clear();
    if (opts.deleteState) {
      const ops: MetaOp[] = this.o.store.meta.scan(metaKeys.pipelinePrefix(this.name)).map(([key]) => ({ kind: 'del', key }));
      await this.o.store.meta.commit(ops, { sync: true });
    }
  }
}

function eventId(buf: Buffer): string {
  // field 1 (id) is almost always first; fall back to a scan
  if (buf[0] === 0x0a) {
    const len = buf[1]!;
    if (len < 0x80) return buf.toString('utf8', 2, 2 + len);
  }
  return '';
}
