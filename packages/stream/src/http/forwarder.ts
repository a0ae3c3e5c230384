/**
 * Forwards a publish to another partition of the same Stream over our gRPC protocol (the
 * partition's client port, as announced by Metadata), with the caller's own `authorization`
 * header, so the owning partition authorizes it exactly as if the caller had sent it there.
 * One channel per partition, opened on first use and kept.
 */
import { GrpcChannel, type ChannelTls } from '@hadron/core';
import { METHOD, decodePublishResponse, encodePublishRequest } from '@hadron/proto';

export interface ForwarderOptions {
  /** URL (http:// or https://) of partition `p`'s client port. */
  address: (p: number) => string;
  tls?: ChannelTls;
  maxMessageBytes: number;
  timeoutMs: number;
}

export class PartitionForwarder {
  private readonly channels = new Map<number, GrpcChannel>();

  constructor(private readonly opts: ForwarderOptions) {}

  /** Publishes `events` on partition `p`; resolves with the offset of the last one. */
  async publish(p: number, events: readonly Uint8Array[], opts: { fsync: boolean; authorization: string | undefined }): Promise<{ partition: number; last: number }> {
    let ch = this.channels.get(p);
    if (!ch) {
      ch = new GrpcChannel(this.opts.address(p), { maxMessageBytes: this.opts.maxMessageBytes, ...(this.opts.tls ? { tls: this.opts.tls } : {}) });
      this.channels.set(p, ch);
    }
    const metadata: Record<string, string> = opts.authorization !== undefined ? { authorization: opts.authorization } : {};
    const res = await ch.unary(METHOD.publish, encodePublishRequest(events, opts.fsync), { metadata, timeoutMs: this.opts.timeoutMs });
    const r = decodePublishResponse(res);
    return { partition: r.partition, last: r.offset };
  }

  async close(): Promise<void> {
    await Promise.all([...this.channels.values()].map((c) => c.close()));
    this.channels.clear();
  }
}
