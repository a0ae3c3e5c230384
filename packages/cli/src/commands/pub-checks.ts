/**
 * Checks `stream pub` applies before sending anything, with messages naming the problem
 * (the server refuses the same things, but a CLI user deserves the reason up front).
 */
import { MAX_ATTRIBUTE_NAME } from '@hadron/proto';

/** Attributes with their own Event field, or reserved by CloudEvents: never an --optattr. */
const OWN_FIELD: Record<string, string> = {
  id: 'use --id',
  source: 'use --source',
  type: 'use --type',
  specversion: 'Hadron events are CloudEvents 1.0; specversion is always 1.0',
  data: '`data` is reserved by CloudEvents; the event data is the <data> argument',
};

/** Why `name=value` is not a valid CloudEvents extension/optional attribute, or undefined. */
export function attributeProblem(name: string, value: string): string | undefined {
  if (name === '') return 'the attribute name is empty';
  if (!/^[a-z0-9]+$/.test(name)) return `attribute name ${JSON.stringify(name)} must consist of lower-case letters a-z and digits 0-9 (CloudEvents 1.0)`;
  if (name.length > MAX_ATTRIBUTE_NAME) return `attribute name is longer than ${MAX_ATTRIBUTE_NAME} characters`;
  const own = OWN_FIELD[name];
  if (own) return `${name} cannot be set as an optional attribute: ${own}`;
  if (value === '' && ['datacontenttype', 'dataschema', 'subject', 'time'].includes(name)) return `${name} must not be empty`;
  if (name === 'time' && !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i.test(value)) return `time must be an RFC 3339 timestamp (2024-05-01T12:00:00Z), got ${JSON.stringify(value)}`;
  return undefined;
}

/** With a JSON datacontenttype, data that does not parse as JSON is refused. */
export function dataProblem(contentType: string | undefined, data: Uint8Array): string | undefined {
  if (contentType === undefined || !/^application\/(.+\+)?json(\s*;.*)?$/i.test(contentType.trim())) return undefined;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(data);
  } catch {
    return `datacontenttype is ${contentType} but the data is not valid UTF-8`;
  }
  try {
    JSON.parse(text);
    return undefined;
  } catch (err) {
    return `datacontenttype is ${contentType} but the data is not valid JSON: ${(err as Error).message}`;
  }
}

/** Lines of `buf` split on \n (a \r before it is dropped), bytes kept as they are; a final newline ends the last line. */
export function splitLines(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let start = 0;
  for (let i = buf.indexOf(10); i >= 0; i = buf.indexOf(10, start)) {
    out.push(buf.subarray(start, i > start && buf[i - 1] === 13 ? i - 1 : i));
    start = i + 1;
  }
  if (start < buf.length) out.push(buf.subarray(start));
  return out;
}
