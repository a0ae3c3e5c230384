/**
 * Encodes a Fetch answer for the wire with its `frames` appended rather than copied through the
 * protobuf writer. With verbatim frames (issue 9) the answer is almost all one `bytes` field;
 * protobuf-es copies it into its chunk buffer and again when it joins the chunks, which was most
 * of the protobuf time left on the leader. Here the other fields are encoded as usual and the
 * frames follow as field 9 in one copy. The bytes are the same as `toBinary` writes: it emits
 * fields in number order, and 9 is the last.
 */
import { ReplicaFetchResponseSchema, create, toBinary, type ReplicaFetchResponse } from '@hadron/proto';

/** Field 9 (`frames`), wire type 2 (length-delimited). */
const FRAMES_TAG = (9 << 3) | 2;

/** `toBinary(ReplicaFetchResponseSchema, res)`, with the frames copied once. */
export function encodeFetchResponse(res: ReplicaFetchResponse): Uint8Array {
  const frames = res.frames;
  if (frames.length === 0) return toBinary(ReplicaFetchResponseSchema, res);
  const head = toBinary(ReplicaFetchResponseSchema, create(ReplicaFetchResponseSchema, { ...res, frames: new Uint8Array(0) }));
  const prefix = Buffer.allocUnsafe(1 + 5);
  prefix[0] = FRAMES_TAG;
  let n = 1;
  for (let v = frames.length; ; ) {
    if (v < 0x80) {
      prefix[n++] = v;
      break;
    }
    prefix[n++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  return Buffer.concat([head, prefix.subarray(0, n), frames]);
}
