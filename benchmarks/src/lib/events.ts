/**
 * Pre-encoded events for the load generators. Building events costs the client CPU that the
 * server needs (both share 2 cores), so every generator encodes a small pool once and cycles
 * through it. The payload (`data`) is exactly `size` bytes; the CloudEvents envelope adds
 * ~40 bytes on the Hadron wire. MB/s figures count payload bytes only, for both systems.
 */
import { encodeEvent, encodePublishRequest, type WireEvent } from '@hadron/proto';

export const EVENT_SOURCE = 'hadron-bench';
export const EVENT_TYPE = 'bench.event';

/** A deterministic payload of `size` bytes (not all zeros, so nothing can shortcut it). */
export function payload(size: number, seed = 0): Buffer {
  const b = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) b[i] = (i * 31 + seed * 7 + 13) & 0xff;
  return b;
}

export function benchEvent(id: string, data: Uint8Array): WireEvent {
  return { id, source: EVENT_SOURCE, specversion: '1.0', type: EVENT_TYPE, optattrs: {}, data };
}

/** Encoded `StreamPublishRequest`s of `batch` events each, `count` distinct ones. */
export function publishRequestPool(opts: { size: number; batch: number; count: number; fsync: boolean; tag: string; ack?: number }): Buffer[] {
  const data = payload(opts.size);
  const pool: Buffer[] = [];
  for (let k = 0; k < opts.count; k++) {
    const evs: Buffer[] = [];
    for (let i = 0; i < opts.batch; i++) evs.push(encodeEvent(benchEvent(`${opts.tag}-${k}-${i}`, data)));
    pool.push(encodePublishRequest(evs, opts.fsync, opts.ack ?? 0));
  }
  return pool;
}

/** Single encoded events, for generators that batch as events come due. */
export function eventPool(opts: { size: number; count: number; tag: string }): Buffer[] {
  const data = payload(opts.size);
  return Array.from({ length: opts.count }, (_, i) => encodeEvent(benchEvent(`${opts.tag}-${i}`, data)));
}
