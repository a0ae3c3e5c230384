/**
 * Limits on names that clients choose and the server stores (issue 14 item 7). A name becomes a
 * meta-log key (`o/{group}`, whose length field is a u16), a log field and a metric label, so
 * an unbounded one broke storage and could make meta-log compaction throw. Every such name is
 * checked here before anything is stored; docs/configuration.md ("Names") lists the limits.
 *
 * Pipeline and stage names come from manifests, which already require RFC 1123 labels of at
 * most 63 characters (manifests/validate.ts); `checkPipelineName` applies the same bound to the
 * names a client sends in `PipelineSubscribe`, so an over-long one is INVALID_ARGUMENT rather
 * than a lookup of an arbitrary string.
 */
import { HadronError } from './errors.js';

/** Longest subscription group name, in UTF-8 bytes. */
export const MAX_GROUP_NAME_BYTES = 255;
/** Longest pipeline or stage name (an RFC 1123 label). */
export const MAX_PIPELINE_NAME_CHARS = 63;

// C0 controls and DEL: they would forge log lines and break metric exposition.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Throws INVALID_ARGUMENT unless `group` is a valid subscription group name. */
export function checkGroupName(group: string): void {
  if (group === '') throw new HadronError('INVALID_ARGUMENT', 'subscriber group name may not be an empty string');
  const bytes = Buffer.byteLength(group, 'utf8');
  if (bytes > MAX_GROUP_NAME_BYTES) {
    throw new HadronError('INVALID_ARGUMENT', `subscriber group name is ${bytes} bytes long; at most ${MAX_GROUP_NAME_BYTES} bytes (UTF-8) are allowed`, {
      context: { bytes, max: MAX_GROUP_NAME_BYTES },
    });
  }
  if (CONTROL.test(group)) throw new HadronError('INVALID_ARGUMENT', 'subscriber group name may not contain control characters');
}

/** Throws INVALID_ARGUMENT unless `name` can be a pipeline or stage name (`what` names it). */
export function checkPipelineName(name: string, what: 'pipeline' | 'stage'): void {
  if (name.length > MAX_PIPELINE_NAME_CHARS) {
    throw new HadronError('INVALID_ARGUMENT', `${what} name is ${name.length} characters long; at most ${MAX_PIPELINE_NAME_CHARS} are allowed`);
  }
}
