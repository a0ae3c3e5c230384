/**
 * Declares a partition server's metrics in one line each (name constant, help, labels): what
 * every one of them shares — the registry it is registered on — is given once. Used by
 * metrics.ts, protocol-metrics.ts and replication/metrics.ts, which used to spell out the same
 * prom-client options for each metric.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export class MetricBuilder {
  constructor(readonly registry: Registry) {}

  gauge<L extends string = string>(name: string, help: string, labelNames: readonly L[] = []): Gauge<L> {
    return new Gauge<L>({ name, help, labelNames, registers: [this.registry] });
  }

  /** A gauge without labels set to `read()` on each scrape (a live figure nobody needs to push). */
  sampled(name: string, help: string, read: () => number): Gauge {
    return new Gauge({
      name,
      help,
      registers: [this.registry],
      collect() {
        this.set(read());
      },
    });
  }

  counter<L extends string = string>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> {
    return new Counter<L>({ name, help, labelNames, registers: [this.registry] });
  }

  histogram<L extends string = string>(name: string, help: string, buckets: number[], labelNames: readonly L[] = []): Histogram<L> {
    return new Histogram<L>({ name, help, buckets, labelNames, registers: [this.registry] });
  }
}
