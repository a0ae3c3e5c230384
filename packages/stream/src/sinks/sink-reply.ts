/**
 * A sink's reply to a Trigger's POST (docs/http.md, "Replies"), read from a 2xx answer with the
 * ingress' decoder, so a reply is accepted exactly when the same request would be accepted by
 * the HTTP ingress (and hence by gRPC publish):
 *
 *   answer                                               reply
 *   content-type application/cloudevents+json            one structured event
 *   content-type application/cloudevents-batch+json      refused (the binding has no batched reply)
 *   a ce-specversion header                              one binary-mode event (body = data)
 *   anything else (no body, text, JSON without ce-*)     no reply (the common case)
 *
 * Pure: no transport.
 */
import { HadronError } from '@hadron/core';
import type { WireEvent } from '@hadron/proto';
import { decodeBinary, decodeJson, modeOf } from '../http/ce-codec.js';

type Headers = Record<string, string | string[] | undefined>;

/** What an answer carried. */
export type SinkReply = { kind: 'none' } | { kind: 'event'; event: WireEvent } | { kind: 'invalid'; problem: string };

export function parseSinkReply(headers: Headers, body: Buffer): SinkReply {
  const mode = modeOf(headers);
  if (mode === 'batched') return { kind: 'invalid', problem: 'a batched reply (application/cloudevents-batch+json) is not a CloudEvent reply; answer one event' };
  if (mode === 'binary' && headers['ce-specversion'] === undefined) return { kind: 'none' };
  try {
    const ev = mode === 'structured' ? decodeJson('structured', body)[0]! : decodeBinary(headers, body);
    return { kind: 'event', event: ev.wire };
  } catch (err) {
    if (err instanceof HadronError) return { kind: 'invalid', problem: err.message };
    throw err;
  }
}
