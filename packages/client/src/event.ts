/**
 * CloudEvents 1.0 ↔ `stream.Event` (https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/spec.md).
 *
 * The wire form keeps the four required attributes as fields and every other attribute (the
 * optional `datacontenttype`, `dataschema`, `subject`, `time` and any extension such as
 * `partitionkey`) as a string in `optattrs`; `data` is bytes.
 *
 * What `publish` accepts (`EventInput`), in either shape:
 *   - the wire shape `{id, source, specversion?, type, optattrs?, data?}` — used as is;
 *   - a flat CloudEvent: an object of the `cloudevents` SDK's `CloudEvent` class or any plain
 *     object with the same attribute properties. Unknown properties are extension attributes.
 * Attribute values are rendered by the CloudEvents type system's canonical string forms:
 * Boolean "true"/"false", Integer decimal, Binary base64, Timestamp RFC 3339 (`Date`), URI and
 * String as is. Data: a Uint8Array as is; a string as UTF-8; `data_base64` decoded; anything
 * else JSON-encoded (with `datacontenttype` defaulting to `application/json`).
 *
 * What subscriptions return (`ReceivedEvent`) is the wire shape plus `partition` and `offset`.
 * `toCloudEvent()` turns it back into flat attributes that `new CloudEvent(attrs)` accepts,
 * decoding `data` by `datacontenttype`: JSON types parse, `text/*` becomes a string, anything
 * else (or nothing) stays bytes. Publishing a CloudEvent and converting what a subscriber gets
 * with `toCloudEvent` yields an equal CloudEvent (the test in event.test.ts).
 */
import { randomUUID } from 'node:crypto';
import { HadronError } from '@hadron/core';
import type { WireEvent } from '@hadron/proto';

export type { WireEvent };

/** Attributes of a CloudEvent that map to fields of `stream.Event` rather than `optattrs`. */
const REQUIRED = new Set(['id', 'source', 'specversion', 'type']);
/** Properties of a flat CloudEvent that are not attributes (SDK internals / 0.3 leftovers). */
const NOT_ATTRIBUTES = new Set(['data', 'data_base64', 'optattrs']);

/** The wire shape of an event; `specversion` defaults to "1.0", `optattrs` and `data` to empty. */
export interface WireEventInput {
  id: string;
  source: string;
  specversion?: string;
  type: string;
  optattrs: Readonly<Record<string, string>>;
  data?: Uint8Array | string;
}

/** A flat CloudEvent, e.g. `new CloudEvent({...})` of the `cloudevents` SDK. */
export interface CloudEventInput {
  id?: string;
  source: string;
  type: string;
  specversion?: string;
  datacontenttype?: string;
  dataschema?: string;
  subject?: string;
  time?: string | Date;
  data?: unknown;
  data_base64?: string;
  [extension: string]: unknown;
}

export type EventInput = WireEventInput | CloudEventInput;

/** An event as delivered by a subscription: the wire shape plus where it is stored. */
export interface ReceivedEvent extends WireEvent {
  partition: number;
  offset: number;
}

const EMPTY = new Uint8Array(0);

function attributeString(name: string, v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v;
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new HadronError('INVALID_EVENT', `attribute ${name}: ${v} is not an integer (CloudEvents Integer)`);
    return String(v);
  }
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Date) return v.toISOString();
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
  if (v instanceof URL) return v.href;
  throw new HadronError('INVALID_EVENT', `attribute ${name} has a value of type ${typeof v}, which the CloudEvents type system cannot represent`);
}

function isWireShape(ev: EventInput): ev is WireEventInput {
  const o = (ev as { optattrs?: unknown }).optattrs;
  return typeof o === 'object' && o !== null && !Array.isArray(o);
}

/**
 * Converts what `publish` accepts into the wire shape. Throws INVALID_EVENT for a missing
 * `source` or `type`, or an attribute value the CloudEvents type system cannot hold.
 */
export function toWireEvent(ev: EventInput): WireEvent {
  if (typeof ev !== 'object' || ev === null) throw new HadronError('INVALID_EVENT', 'an event must be an object');
  if (isWireShape(ev)) {
    // Already complete: used as is (the hot path of high-rate publishers).
    if (ev.specversion && ev.data instanceof Uint8Array && typeof ev.id === 'string' && ev.id !== '' && typeof ev.source === 'string' && ev.source !== '' && typeof ev.type === 'string' && ev.type !== '') {
      return ev as WireEvent;
    }
    const data = ev.data === undefined ? EMPTY : typeof ev.data === 'string' ? Buffer.from(ev.data, 'utf8') : ev.data;
    const out: WireEvent = { id: ev.id, source: ev.source, specversion: ev.specversion || '1.0', type: ev.type, optattrs: ev.optattrs as Record<string, string>, data };
    check(out);
    return out;
  }
  const optattrs: Record<string, string> = {};
  for (const key of Object.keys(ev)) {
    if (REQUIRED.has(key) || NOT_ATTRIBUTES.has(key)) continue;
    const s = attributeString(key, ev[key]);
    if (s !== undefined) optattrs[key] = s;
  }
  let data: Uint8Array = EMPTY;
  const d = ev.data;
  if (d instanceof Uint8Array) data = d;
  else if (typeof d === 'string') data = Buffer.from(d, 'utf8');
  else if (d !== undefined && d !== null) {
    data = Buffer.from(JSON.stringify(d), 'utf8');
    optattrs.datacontenttype ??= 'application/json';
  } else if (typeof ev.data_base64 === 'string') data = Buffer.from(ev.data_base64, 'base64');
  const out: WireEvent = {
    id: typeof ev.id === 'string' && ev.id !== '' ? ev.id : randomUUID(),
    source: ev.source,
    specversion: ev.specversion || '1.0',
    type: ev.type,
    optattrs,
    data,
  };
  check(out);
  return out;
}

function check(ev: WireEvent): void {
  for (const k of ['id', 'source', 'type'] as const) {
    if (typeof ev[k] !== 'string' || ev[k] === '') {
      throw new HadronError('INVALID_EVENT', `event attribute \`${k}\` is required (a non-empty string)`);
    }
  }
  if (!(ev.data instanceof Uint8Array)) throw new HadronError('INVALID_EVENT', 'event `data` must be bytes (Uint8Array) or a string');
}

const isJsonType = (ct: string): boolean => {
  const base = ct.split(';')[0]!.trim().toLowerCase();
  return base === 'application/json' || base === 'text/json' || base.endsWith('+json');
};

/**
 * Flat CloudEvent attributes for an event (what `new CloudEvent(attrs)` of the `cloudevents`
 * SDK takes): the four required attributes, every `optattrs` entry, and `data` decoded by
 * `datacontenttype` (JSON types parsed, `text/*` as a string, otherwise a Buffer).
 */
export function toCloudEvent(ev: WireEvent): Record<string, unknown> {
  const out: Record<string, unknown> = { ...ev.optattrs, id: ev.id, source: ev.source, specversion: ev.specversion, type: ev.type };
  const bytes = Buffer.from(ev.data.buffer, ev.data.byteOffset, ev.data.byteLength);
  const ct = ev.optattrs.datacontenttype;
  if (bytes.length === 0 && ct === undefined) return out;
  if (ct !== undefined && isJsonType(ct)) {
    try {
      out.data = JSON.parse(bytes.toString('utf8'));
      return out;
    } catch {
      // not JSON after all: hand over the bytes
    }
  } else if (ct !== undefined && /^text\//i.test(ct.trim())) {
    out.data = bytes.toString('utf8');
    return out;
  }
  out.data = bytes;
  return out;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The text of `data` when it is valid UTF-8, else undefined. */
export function dataText(data: Uint8Array): string | undefined {
  try {
    return strictUtf8.decode(data);
  } catch {
    return undefined;
  }
}
