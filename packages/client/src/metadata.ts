/**
 * Follows the Metadata stream (reference §2.8) and feeds every partition list to a sink.
 *
 * State machine (each transition is emitted as `state` and logged at debug level):
 *
 *   connecting(address, attempt) ──first list──▶ streaming(address)
 *        │                                           │ stream ended / failed
 *        │ failed                                    ▼
 *        └──────────────────────────────▶ backoff(attempt, delayMs, error) ──delay──▶ connecting(next address)
 *   any ──close()──▶ closed
 *
 * Addresses tried, in turn: the bootstrap URL, then every known partition's address (any
 * partition serves Metadata), so losing the bootstrap process (e.g. partition 0 in `hadron dev`)
 * does not blind the client. The attempt counter, and so the backoff, resets once a stream has
 * delivered a list. A non-retriable error (bad token) is kept in `lastError` so callers waiting
 * for the topology fail with it instead of waiting forever; the follower keeps trying at the
 * capped backoff, because the token may become valid (e.g. created later).
 */
import { EventEmitter } from 'node:events';
import { HadronError, backoffDelay, isRetriable, type BackoffOptions, type Logger } from '@hadron/core';
import { MetadataRequestSchema, MetadataResponseSchema, create, fromBinary, toBinary, METHOD } from '@hadron/proto';
import { sleepUnref, type PartitionInfo } from './topology.js';

export const METADATA_METHOD = METHOD.metadata;

export type MetadataState =
  | { kind: 'connecting'; address: string; attempt: number }
  | { kind: 'streaming'; address: string }
  | { kind: 'backoff'; attempt: number; delayMs: number; error: unknown }
  | { kind: 'closed' };

/** Opens one Metadata stream to `address` and yields its partition lists. */
export type MetadataOpener = (address: string, signal: AbortSignal) => AsyncIterable<PartitionInfo[]>;

export interface MetadataFollowerOptions {
  bootstrap: string;
  open: MetadataOpener;
  /** Current partition addresses, tried after the bootstrap address. */
  knownAddresses: () => string[];
  onList: (list: PartitionInfo[]) => void;
  backoff: BackoffOptions;
  logger: Logger;
  /** Injected for tests. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

const REQUEST = toBinary(MetadataRequestSchema, create(MetadataRequestSchema));

/** The real opener: a server-streaming call on a channel chosen by address. */
export function grpcMetadataOpener(
  channelFor: (address: string) => { serverStream: (method: string, req: Uint8Array, opts: { metadata?: Record<string, string>; signal?: AbortSignal }) => { incoming: AsyncIterable<Buffer> } },
  metadata: Record<string, string>,
  mode: 'internal' | 'external' = 'internal',
): MetadataOpener {
  return async function* open(address, signal) {
    const call = channelFor(address).serverStream(METADATA_METHOD, REQUEST, { metadata, signal });
    for await (const msg of call.incoming) {
      let res;
      try {
        res = fromBinary(MetadataResponseSchema, msg);
      } catch (err) {
        throw new HadronError('MALFORMED_MESSAGE', `invalid MetadataResponse from ${address}: ${(err as Error).message}`);
      }
      if (mode === 'external') {
        const missing = res.partitions.filter((p) => p.external === '').map((p) => p.partition);
        if (missing.length > 0) {
          throw new HadronError(
            'CONFIG_INVALID',
            `mode 'external': the Stream announces no external address for partition(s) ${missing.join(', ')} (from ${address}); give the Stream spec.external (docs/operations.md) or connect with mode 'internal'`,
          );
        }
        yield res.partitions.map((p) => ({ partition: p.partition, address: p.external }));
      } else {
        yield res.partitions.map((p) => ({ partition: p.partition, address: p.internal }));
      }
    }
  };
}

export class MetadataFollower extends EventEmitter<{ state: [MetadataState] }> {
  private _state: MetadataState = { kind: 'connecting', address: '', attempt: 0 };
  private readonly stop = new AbortController();
  private loop: Promise<void> | undefined;
  /** The last error, if the last attempt failed; cleared when a list arrives. */
  lastError: unknown = undefined;

  constructor(private readonly o: MetadataFollowerOptions) {
    super();
  }

  get state(): MetadataState {
    return this._state;
  }

  private setState(s: MetadataState): void {
    this._state = s;
    this.o.logger.debug({ metadata: s.kind, ...('address' in s ? { address: s.address } : {}), ...('attempt' in s ? { attempt: s.attempt } : {}) }, 'metadata stream state');
    this.emit('state', s);
  }

  /** Starts following (idempotent). */
  start(): void {
    this.loop ??= this.run();
  }

  private candidates(): string[] {
    const out = [this.o.bootstrap];
    for (const a of this.o.knownAddresses()) if (!out.includes(a)) out.push(a);
    return out;
  }

  private async run(): Promise<void> {
    const signal = this.stop.signal;
    const sleep = this.o.sleep ?? sleepUnref;
    let attempt = 0;
    let previous: string | undefined;
    while (!signal.aborted) {
      // The address after the previous one: the one that failed or ended may be the process
      // that went away.
      const list = this.candidates();
      const address = previous === undefined ? list[0]! : list[(list.indexOf(previous) + 1) % list.length]!;
      previous = address;
      attempt++;
      this.setState({ kind: 'connecting', address, attempt });
      let error: unknown;
      try {
        for await (const parts of this.o.open(address, signal)) {
          if (this._state.kind !== 'streaming') this.setState({ kind: 'streaming', address });
          attempt = 0;
          this.lastError = undefined;
          this.o.onList(parts);
        }
        error = new HadronError('UNAVAILABLE', `metadata stream from ${address} ended`);
      } catch (err) {
        error = err;
      }
      if (signal.aborted) break;
      this.lastError = error;
      const delayMs = attempt === 0 ? 0 : backoffDelay(attempt, isRetriable(error) ? this.o.backoff : { ...this.o.backoff, baseMs: this.o.backoff.maxMs ?? 5000 });
      this.setState({ kind: 'backoff', attempt, delayMs, error });
      this.o.logger.debug({ address, err: error instanceof Error ? error.message : String(error), delayMs }, 'metadata stream lost');
      try {
        await sleep(delayMs, signal);
      } catch {
        break;
      }
    }
    this.setState({ kind: 'closed' });
  }

  async close(): Promise<void> {
    this.stop.abort(new HadronError('CANCELLED', 'client closed'));
    await this.loop;
  }
}
