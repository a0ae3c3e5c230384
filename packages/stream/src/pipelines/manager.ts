/**
 * Runs one `PipelineController` per Pipeline whose `sourceStream` is this partition's stream,
 * following the control-plane view: new pipelines start, changed ones update in place, deleted
 * ones (or ones whose sourceStream moved away) stop and their stored state is deleted, so a
 * re-created pipeline starts fresh from its start point (the original resumed stale state).
 */
import type { DeadLetterHook } from '../dead-letter.js';
import { HadronError, type ControlPlaneSource, type ControlPlaneView, type Logger } from '@hadron/core';
import type { PartitionStore } from '../storage/partition-store.js';
import { PipelineController, type PipelineMetricsSink } from './controller.js';

export interface PipelineManagerOptions {
  stream: string;
  store: PartitionStore;
  controlPlane: ControlPlaneSource;
  logger: Logger;
  metrics: PipelineMetricsSink;
  ackDeadlineMs: number;
  nackBackoff: { baseMs: number; maxMs: number };
  onFatal: (err: unknown) => void;
  /** The Stream's dead-letter policy, applied to every stage (dead-letter.ts). */
  deadLetter?: DeadLetterHook;
}

export class PipelineManager {
  private readonly controllers = new Map<string, PipelineController>();
  private readonly specs = new Map<string, string>();
  private chain: Promise<void> = Promise.resolve();
  private readonly onChange = (v: ControlPlaneView): void => {
    this.chain = this.chain.then(() => this.sync(v)).catch((err: unknown) => this.o.onFatal(err));
  };

  constructor(private readonly o: PipelineManagerOptions) {}

  async start(): Promise<void> {
    await this.sync(this.o.controlPlane.view(), true);
    this.o.controlPlane.on('change', this.onChange);
  }

  get(name: string): PipelineController | undefined {
    return this.controllers.get(name);
  }

  names(): string[] {
    return [...this.controllers.keys()];
  }

  private async sync(view: ControlPlaneView, initial = false): Promise<void> {
    const wanted = new Map([...view.pipelines].filter(([, p]) => p.spec.sourceStream === this.o.stream));
    for (const [name, ctl] of this.controllers) {
      if (wanted.has(name)) continue;
      this.controllers.delete(name);
      this.specs.delete(name);
      await ctl.stop({ deleteState: true, reason: new HadronError('NOT_FOUND', `pipeline ${name} was deleted`) });
      this.o.logger.info({ pipeline: name }, 'pipeline removed; its state was deleted');
    }
    if (initial) {
      // State of pipelines deleted while this process was down.
      const stale = new Set(
        this.o.store.meta
          .scan('p/')
          .map(([k]) => k.slice(2, k.indexOf('/', 2)))
          .filter((n) => !wanted.has(n)),
      );
      for (const name of stale) {
        const ops = this.o.store.meta.scan(`p/${name}/`).map(([key]) => ({ kind: 'del' as const, key }));
        try {
          await this.o.store.meta.commit(ops, { sync: true });
        } catch (err) {
          // Starting on a full volume must work: the stale state is deleted at a later start.
          if (!(err instanceof HadronError && err.code === 'DISK_FULL')) throw err;
          this.o.logger.warn({ pipeline: name }, 'volume full: state of a deleted pipeline kept until a later start');
          continue;
        }
        this.o.logger.info({ pipeline: name }, 'deleted state of a pipeline that no longer exists');
      }
    }
    for (const [name, p] of wanted) {
      const digest = JSON.stringify(p.spec);
      const ctl = this.controllers.get(name);
      if (!ctl) {
        this.controllers.set(name, new PipelineController(name, p, { ...this.o }));
        this.specs.set(name, digest);
        this.controllers.get(name)!.scan();
        this.o.logger.info({ pipeline: name }, 'pipeline started');
      } else if (this.specs.get(name) !== digest) {
        this.specs.set(name, digest);
        ctl.update(p);
        this.o.logger.info({ pipeline: name }, 'pipeline updated');
      }
    }
  }

  async close(): Promise<void> {
    this.o.controlPlane.off('change', this.onChange);
    await this.chain;
    for (const ctl of this.controllers.values()) await ctl.stop({ deleteState: false, reason: new HadronError('UNAVAILABLE', 'server shutting down') });
    this.controllers.clear();
  }
}
