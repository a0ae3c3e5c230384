/**
 * The like-for-like TypeScript comparison: the `kafkajs` client (pure JavaScript, no native
 * code) publishing the way Hadron's raw publish workload does — batches of `batch` messages
 * (`producer.send` with that many messages, one produce request), `window` batches in flight per
 * partition, acks=all (-1), one producer (one connection to the broker) for all partitions.
 *
 * Check: every send is acknowledged without error at a distinct base offset, the highest base
 * offset + batch of each partition equals what was sent to it, and the topic's end offsets sum
 * to the total (GetOffsetShell).
 */
import { Kafka, logLevel } from 'kafkajs';
import { payload } from '../lib/events.js';
import { now } from '../lib/stats.js';
import { runWindowed } from '../lib/window.js';
import { check, throughputResult, type WorkloadResult, type WorkloadSpec } from '../types.js';
import { createTopic, topicMessages, withKafka, type KafkaMode } from './server.js';

const TOPIC = 'bench';

export function kafkaJsPublish(spec: WorkloadSpec, mode: KafkaMode): Promise<WorkloadResult> {
  return withKafka(mode, async (k) => {
    await createTopic(k, TOPIC, spec.partitions);
    const kafka = new Kafka({ clientId: 'hadron-bench', brokers: [k.bootstrap], logLevel: logLevel.NOTHING });
    const producer = kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    try {
      const perPartition = Math.ceil(spec.events / spec.partitions / spec.batch) * spec.batch;
      const batches = perPartition / spec.batch;
      const value = Buffer.from(payload(spec.eventSize));
      const messages = Array.from({ length: spec.batch }, () => ({ value }));
      const highest = new Array<number>(spec.partitions).fill(-1);
      const offsets = new Set<string>();
      const t0 = now();
      await Promise.all(
        Array.from({ length: spec.partitions }, (_, p) =>
          runWindowed(batches, spec.window, async () => {
            const [res] = await producer.send({ topic: TOPIC, acks: -1, messages: messages.map((m) => ({ ...m, partition: p })) });
            check(res !== undefined && res.errorCode === 0, `send to partition ${p} answered ${JSON.stringify(res)}`);
            const base = Number(res.baseOffset);
            offsets.add(`${p}:${base}`);
            if (base > highest[p]!) highest[p] = base;
          }),
        ),
      );
      const seconds = (now() - t0) / 1000;
      const total = perPartition * spec.partitions;
      check(offsets.size === batches * spec.partitions, `distinct base offsets ${offsets.size} = batches sent ${batches * spec.partitions}`);
      for (let p = 0; p < spec.partitions; p++) check(highest[p]! + spec.batch === perPartition, `partition ${p}: highest base offset ${highest[p]} + ${spec.batch} = ${perPartition}`);
      const stored = await topicMessages(k, TOPIC);
      check(stored === total, `topic end offsets sum to ${stored}, expected ${total}`);
      return throughputResult(spec, total, seconds, {
        verified: [`${batches * spec.partitions} sends acknowledged at distinct base offsets`, `each partition's highest base offset + batch = ${perPartition}`, `topic end offsets sum to ${stored}`],
        params: { client: 'kafkajs 2.2.4', acks: -1, batch: spec.batch, windowPerPartition: spec.window, partitions: spec.partitions, mode },
        notes: [`kafkajs producer.send() of ${spec.batch} messages, ${spec.window} in flight per partition`],
      });
    } finally {
      await producer.disconnect();
    }
  });
}
