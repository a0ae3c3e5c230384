/**
 * How the CLI prints events: one line each. `json` is one JSON object per line with the
 * CloudEvents attributes, `optattrs`, `partition`, `offset` and `data` — UTF-8 text, or base64
 * with `"binary": true` when the bytes are not valid UTF-8.
 */
import { dataText, type ReceivedEvent, type StageDelivery, type WireEvent } from '@hadron/client';

export type OutputFormat = 'text' | 'json';

export interface EventJson {
  id: string;
  source: string;
  specversion: string;
  type: string;
  optattrs: Record<string, string>;
  partition?: number;
  offset?: number;
  data: string;
  binary: boolean;
}

export function eventJson(e: WireEvent & Partial<Pick<ReceivedEvent, 'partition' | 'offset'>>): EventJson {
  const text = dataText(e.data);
  return {
    id: e.id,
    source: e.source,
    specversion: e.specversion,
    type: e.type,
    optattrs: e.optattrs,
    ...(e.partition !== undefined ? { partition: e.partition } : {}),
    ...(e.offset !== undefined ? { offset: e.offset } : {}),
    data: text ?? Buffer.from(e.data).toString('base64'),
    binary: text === undefined,
  };
}

/** `partition=1 offset=5 id=… source=… type=… optattrs={…} data="…"` (binary data as base64:…). */
export function eventText(e: WireEvent & Partial<Pick<ReceivedEvent, 'partition' | 'offset'>>): string {
  const text = dataText(e.data);
  const parts: string[] = [];
  if (e.partition !== undefined) parts.push(`partition=${e.partition}`);
  if (e.offset !== undefined) parts.push(`offset=${e.offset}`);
  parts.push(`id=${e.id}`, `source=${e.source}`, `type=${e.type}`);
  if (e.specversion !== '1.0') parts.push(`specversion=${e.specversion}`);
  if (Object.keys(e.optattrs).length) parts.push(`optattrs=${JSON.stringify(e.optattrs)}`);
  parts.push(`data=${text !== undefined ? JSON.stringify(text) : `base64:${Buffer.from(e.data).toString('base64')}`}`);
  return parts.join(' ');
}

export function stageDeliveryLine(d: StageDelivery, format: OutputFormat): string {
  const names = Object.keys(d.inputs).sort();
  if (format === 'json') {
    return JSON.stringify({
      pipeline: d.pipeline,
      stage: d.stage,
      partition: d.partition,
      offset: d.offset,
      attempt: d.attempt,
      rootEvent: eventJson(d.rootEvent),
      inputs: Object.fromEntries(names.map((n) => [n, eventJson(d.inputs[n]!)])),
    });
  }
  const inputs = names.map((n) => `${n}={${eventText(d.inputs[n]!)}}`).join(' ');
  return `pipeline=${d.pipeline} stage=${d.stage} partition=${d.partition} offset=${d.offset} attempt=${d.attempt} root={${eventText({ ...d.rootEvent, partition: undefined, offset: undefined } as WireEvent)}}${inputs ? ` inputs: ${inputs}` : ''}`;
}
