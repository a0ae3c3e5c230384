/**
 * Forwards a publish to another partition of the same Stream over our gRPC protocol (the
 * partition's client port, as announced by Metadata), with the caller's own `authorization`
 * header, so the owning partition authorizes it exactly as if the caller had sent it there.
 * One channel per partition, opened on first use and kept.
 */
import { GrpcChannel } from '@hadron/core';
import type { VersionedTls } from '../outbound-tls.js';
import { METHOD, decodePublishResponse, encodePublishRequest } from '@hadron/proto';

export interface ForwarderOptions {
  /** URL (http:// or https://) of partition `p`'s client port. */
  address: (p: number) => string;
  /** TLS material for https:// (outbound-tls.ts); a new version opens a new channel. */
  tls?: VersionedTls;
  maxMessageBytes: number;
  timeoutMs: number;
}

export class PartitionForwarder {
  private readonly channels = new Map<number, { ch: GrpcChannel; version: number }>();

  constructor(private readonly opts: ForwarderOptions) {}

  /** Publishes `events` on partition `p`; resolves with the offset of the last one. */
  async publish(p: number, events: readonly Uint8Array[], opts: { fsync: boolean; authorization: string | undefined }): Promise<{ partition: number; last: number }> {
    const tls = this.opts.tls?.();
    let entry = this.channels.get(p);
    if (!entry || (tls && entry.version !== tls.version)) {
      // Rotated material: new calls use a new channel; the old one finishes what it carries.
      if (entry) void entry.ch.close();
      entry = { ch: new GrpcChannel(this.opts.address(p), { maxMessageBytes: this.opts.maxMessageBytes, ...(tls ? { tls: tls.material } : {}) }), version: tls?.version ?? 0 };
      this.channels.set(p, entry);
    }
    const ch = entry.ch;
    const metadata: Record<string, string> = opts.authorization !== undefined ? { authorization: opts.authorization } : {};
    const res = await ch.unary(METHOD.publish, encodePublishRequest(events, opts.fsync), { metadata, timeoutMs: this.opts.timeoutMs });
    const r = decodePublishResponse(res);
    return { partition: r.partition, last: r.offset };
  }

  async close(): Promise<void> {
    await Promise.all([...this.channels.values()].map((c) => c.ch.close()));
    this.channels.clear();
  }
}
