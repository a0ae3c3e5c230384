/**
 * Stream subscriptions (consumer groups) on the wire: `StreamSubscribe` (reference §2.6).
 *
 *   client → setup{group_name, durable, max_batch_size, starting_point}
 *   server → StreamSubscribeResponse{batch, last_included_offset, attempt, partition}
 *   client → ack{} | nack("error text"), with offset = last_included_offset
 *                                                (one reply per delivery, in order)
 *
 * On reconnect the setup asks to start right after the last offset this client acked on that
 * partition. The server ignores starting points of a group that already exists (a durable group,
 * or one with other members), so this only matters for an ephemeral group that vanished with its
 * last member: it resumes where it left off instead of from its original starting point.
 */
import {
  StreamSubscribeRequestSchema,
  encodeSubscribeAck,
  create,
  checkEventBytes,
  decodeEvent,
  decodeSubscribeResponse,
  toBinary, METHOD } from '@hadron/proto';
import type { ReceivedEvent } from './event.js';
import type { SubscriptionProtocol } from './subscription.js';

export const STREAM_SUBSCRIBE_METHOD = METHOD.subscribe;

/** Where a new group starts: the first retained event, after the current last one, or at an offset. */
export type StartPoint = 'beginning' | 'latest' | { offset: number };

export interface SubscribeOptions {
  /** Consumer group name; members of a group share its deliveries. */
  group: string;
  /** Keep the group and its acked offset across restarts (default true). Fixed by the group's first member. */
  durable?: boolean;
  /** Most events per delivery (default 50). Fixed by the group's first member. */
  batchSize?: number;
  /** Where a new group starts (default 'latest': only events published after it is created). */
  startPoint?: StartPoint;
  /** Closes the subscription when aborted. */
  signal?: AbortSignal;
}

/** One delivery: a batch of consecutive events of one partition. */
export interface Delivery {
  group: string;
  partition: number;
  events: ReceivedEvent[];
  /** Offset of the last event of the batch. */
  lastIncludedOffset: number;
  /** 1 for a first delivery, 2+ for a redelivery (after a nack, an ack deadline, a disconnect). */
  attempt: number;
  /**
   * Events of the batch no decoder accepts (only from servers older than publish-time
   * validation), left out of `events`; acking the delivery acks past them.
   */
  undecodable?: Array<{ offset: number; problem: string }>;
}

export type DeliveryHandler = (delivery: Delivery) => void | Promise<void>;

export function streamProtocol(opts: SubscribeOptions): SubscriptionProtocol<Delivery, void> {
  const group = opts.group;
  const setupFor = (lastAcked: number | undefined): Uint8Array => {
    const sp = lastAcked !== undefined ? { offset: lastAcked + 1 } : (opts.startPoint ?? 'latest');
    const startingPoint =
      sp === 'beginning'
        ? { case: 'beginning' as const, value: {} }
        : sp === 'latest'
          ? { case: 'latest' as const, value: {} }
          : { case: 'offset' as const, value: BigInt(sp.offset) };
    return toBinary(
      StreamSubscribeRequestSchema,
      create(StreamSubscribeRequestSchema, {
        action: { case: 'setup', value: { groupName: group, durable: opts.durable ?? true, maxBatchSize: Math.max(1, opts.batchSize ?? 50), startingPoint } },
      }),
    );
  };
  return {
    description: `group "${group}"`,
    method: STREAM_SUBSCRIBE_METHOD,
    setup: setupFor,
    decode(msg, partition) {
      const d = decodeSubscribeResponse(msg);
      const n = d.events.length;
      const events: ReceivedEvent[] = [];
      let undecodable: Array<{ offset: number; problem: string }> | undefined;
      d.events.forEach((buf, i) => {
        const offset = d.lastIncludedOffset - (n - 1 - i);
        // An older server may deliver an event no decoder accepts: leave it out (and say so)
        // rather than fail the delivery, which would be redelivered and fail forever.
        const problem = checkEventBytes(buf, 0, buf.length, { cloudEvents: false });
        if (problem === null) events.push({ ...decodeEvent(buf), partition, offset });
        else (undecodable ??= []).push({ offset, problem });
      });
      return { group, partition, events, lastIncludedOffset: d.lastIncludedOffset, attempt: d.attempt || 1, ...(undecodable ? { undecodable } : {}) };
    },
    // Replies carry the batch's offset: the server ignores one that does not name the batch in
    // flight, so a duplicate can never acknowledge a batch this member has not seen.
    ack: (_, d) => encodeSubscribeAck(d.lastIncludedOffset),
    nack: (reason, d) =>
      toBinary(StreamSubscribeRequestSchema, create(StreamSubscribeRequestSchema, { action: { case: 'nack', value: reason }, offset: BigInt(d.lastIncludedOffset) })),
    ackedOffset: (d) => d.lastIncludedOffset,
    onDecoded(d, logger, partition) {
      for (const u of d.undecodable ?? []) logger.error({ group, partition, offset: u.offset, problem: u.problem }, 'undecodable event left out of the delivery');
    },
  };
}
