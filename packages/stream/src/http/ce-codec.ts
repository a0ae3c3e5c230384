/**
 * CloudEvents HTTP protocol binding v1.0.2 → encoded `stream.Event` bytes (pure: no transport).
 *
 *   content-type                              mode        events
 *   application/cloudevents-batch+json        batched     a JSON array of structured events
 *   application/cloudevents+json (or +… any)  structured  one JSON object (JSON format v1.0.2)
 *   anything else (or none)                   binary      `ce-*` headers are the attributes,
 *                                                         content-type → datacontenttype,
 *                                                         the body → data
 *
 * Binary mode (binding §3.1.3): header names are case-insensitive, the attribute name is the
 * header name after `ce-`, values are percent-decoded (§3.1.3.2: UTF-8 in %XX escapes).
 * Structured mode (JSON format §3): attributes are top-level members; string, number and
 * boolean values are stored as their string form, `null` means absent; `data` with a JSON
 * `datacontenttype` (or none: JSON format §3.1.1 implies application/json) is stored as its
 * JSON text, a string `data` with another content type as its UTF-8 bytes, `data_base64` as the
 * decoded bytes; both at once is an error.
 *
 * Every event is then validated by `checkEventBytes`, the same validator gRPC publish uses, so
 * an event accepted here is exactly an event accepted there.
 */
import { HadronError } from '@hadron/core';
import { checkEventBytes, encodeEvent, type WireEvent } from '@hadron/proto';

export const STRUCTURED_TYPE = 'application/cloudevents+json';
export const BATCH_TYPE = 'application/cloudevents-batch+json';

export type CeMode = 'binary' | 'structured' | 'batched';

export interface DecodedEvent {
  wire: WireEvent;
  /** The encoded `stream.Event`, validated. */
  bytes: Buffer;
}

type Headers = Record<string, string | string[] | undefined>;

/** The base media type of a content-type header, lower-cased ("" when absent). */
export function mediaType(ct: string | undefined): string {
  return (ct ?? '').split(';')[0]!.trim().toLowerCase();
}

export function modeOf(headers: Headers): CeMode {
  const mt = mediaType(one(headers['content-type']));
  if (mt === BATCH_TYPE) return 'batched';
  if (mt.startsWith('application/cloudevents')) return 'structured';
  return 'binary';
}

function one(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(',') : v;
}

const invalid = (msg: string): HadronError => new HadronError('INVALID_EVENT', msg);

/** %XX → bytes → UTF-8 (binding §3.1.3.2); any other character is kept as is. */
export function percentDecode(name: string, v: string): string {
  if (!v.includes('%')) return v;
  const bytes: number[] = [];
  const enc = Buffer.from(v, 'utf8');
  for (let i = 0; i < enc.length; i++) {
    const c = enc[i]!;
    if (c === 0x25) {
      const hex = enc.subarray(i + 1, i + 3).toString('latin1');
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) throw invalid(`header ce-${name}: invalid percent-encoding ${JSON.stringify(v)}`);
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else bytes.push(c);
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(bytes));
  } catch {
    throw invalid(`header ce-${name}: percent-encoded value is not valid UTF-8`);
  }
}

/** Binary mode: one event from `ce-*` headers and the body. */
export function decodeBinary(headers: Headers, body: Buffer): DecodedEvent {
  const attrs: Record<string, string> = {};
  for (const [h, v] of Object.entries(headers)) {
    if (v === undefined || !h.toLowerCase().startsWith('ce-')) continue;
    const name = h.slice(3).toLowerCase();
    attrs[name] = percentDecode(name, one(v)!);
  }
  if (attrs.specversion === undefined) {
    throw invalid('binary-mode CloudEvent without a ce-specversion header (send ce-specversion, ce-id, ce-source and ce-type, or a structured event with content-type application/cloudevents+json)');
  }
  const ct = one(headers['content-type']);
  if (ct !== undefined && ct !== '') attrs.datacontenttype = ct;
  return build(attrs, body, 'binary-mode event');
}

/** Structured or batched mode: the JSON body. */
export function decodeJson(mode: 'structured' | 'batched', body: Buffer): DecodedEvent[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new HadronError('MALFORMED_MESSAGE', `${mode} CloudEvent body is not valid JSON: ${(err as Error).message}`);
  }
  if (mode === 'structured') {
    if (!isObject(parsed)) throw invalid('a structured CloudEvent must be a JSON object');
    return [fromJsonObject(parsed, 'structured event')];
  }
  if (!Array.isArray(parsed)) throw invalid('a CloudEvents batch must be a JSON array of events');
  return parsed.map((e, i) => {
    if (!isObject(e)) throw invalid(`event ${i} of the batch: must be a JSON object`);
    return fromJsonObject(e, `event ${i} of the batch`);
  });
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

const isJsonType = (ct: string | undefined): boolean => {
  if (ct === undefined) return true;
  const b = mediaType(ct);
  return b === 'application/json' || b === 'text/json' || b.endsWith('+json');
};

function fromJsonObject(o: Record<string, unknown>, where: string): DecodedEvent {
  const attrs: Record<string, string> = {};
  for (const [k, v] of Object.entries(o)) {
    if (k === 'data' || k === 'data_base64' || v === null) continue;
    if (typeof v === 'string') attrs[k] = v;
    else if (typeof v === 'boolean') attrs[k] = String(v);
    else if (typeof v === 'number' && Number.isSafeInteger(v)) attrs[k] = String(v);
    else throw invalid(`${where}: attribute ${JSON.stringify(k)} must be a string, an integer or a boolean`);
  }
  const hasData = o.data !== undefined && o.data !== null;
  const hasB64 = o.data_base64 !== undefined && o.data_base64 !== null;
  if (hasData && hasB64) throw invalid(`${where}: has both data and data_base64`);
  let data: Buffer = Buffer.alloc(0);
  if (hasB64) {
    data = decodeBase64(o.data_base64, where);
  } else if (hasData) {
    if (typeof o.data === 'string' && !isJsonType(attrs.datacontenttype)) data = Buffer.from(o.data, 'utf8');
    else {
      data = Buffer.from(JSON.stringify(o.data), 'utf8');
      attrs.datacontenttype ??= 'application/json';
    }
  }
  return build(attrs, data, where);
}

/**
 * Strict base64 (RFC 4648 §4, padded) without a per-character regular expression (the hot path
 * of batched ingress): Node's decoder skips characters outside the alphabet, so a decoded length
 * other than the one the text's length implies means the text was not base64.
 */
function decodeBase64(v: unknown, where: string): Buffer {
  const bad = (): HadronError => invalid(`${where}: data_base64 must be a padded base64 string (RFC 4648)`);
  if (typeof v !== 'string' || v.length % 4 !== 0) throw bad();
  const pad = v.endsWith('==') ? 2 : v.endsWith('=') ? 1 : 0;
  const out = Buffer.from(v, 'base64');
  if (out.length !== (v.length / 4) * 3 - pad || v.includes('-') || v.includes('_')) throw bad();
  return out;
}

function build(attrs: Record<string, string>, data: Buffer, where: string): DecodedEvent {
  const { id = '', source = '', specversion = '', type = '', ...optattrs } = attrs;
  const wire: WireEvent = { id, source, specversion, type, optattrs, data };
  const bytes = encodeEvent(wire);
  const problem = checkEventBytes(bytes, 0, bytes.length);
  if (problem !== null) throw invalid(`${where}: ${problem}`);
  return { wire, bytes };
}

/** Where the HTTP request tells us the partition key comes from (for placement). */
export function placementKey(ev: WireEvent): string | undefined {
  return ev.optattrs.partitionkey ?? ev.optattrs.subject;
}
