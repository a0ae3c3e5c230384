/** The Fetch answer encoder that appends the frames writes exactly what protobuf-es writes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReplicaFetchResponseSchema, create, fromBinary, toBinary } from '@hadron/proto';
import { encodeFetchResponse } from './fetch-codec.js';

test('encodeFetchResponse equals toBinary byte for byte, for every length-prefix size of the frames', () => {
  for (const len of [0, 1, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152 + 5]) {
    const frames = Buffer.alloc(len, len % 251);
    for (const withOthers of [false, true]) {
      const res = create(ReplicaFetchResponseSchema, {
        frames,
        ...(withOthers
          ? { leaderFirstOffset: 3n, leaderLastOffset: 900n, metaSnapshot: true, meta: [{ key: 'o/g', value: Buffer.from([1, 2]) }, { key: 'g/x', delete: true }], metaEpoch: 'e1', metaSeq: 7n }
          : {}),
      });
      const mine = Buffer.from(encodeFetchResponse(res));
      assert.ok(mine.equals(Buffer.from(toBinary(ReplicaFetchResponseSchema, res))), `frames of ${len} bytes, other fields: ${withOthers}`);
      assert.ok(Buffer.from(fromBinary(ReplicaFetchResponseSchema, mine).frames).equals(frames));
      assert.equal(res.frames, frames, 'the answer given is not changed');
    }
  }
});
