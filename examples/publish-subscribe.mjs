// Publishes 10 events and reads them back through a consumer group, with @hadron/client.
//   HADRON_URL=http://127.0.0.1:7000 HADRON_TOKEN=$(cat .hadron/tokens/hadron-full-access) node examples/publish-subscribe.mjs
import { createClient } from '@hadron/client';

const client = createClient({ url: process.env.HADRON_URL ?? 'http://127.0.0.1:7000', token: process.env.HADRON_TOKEN });
const run = `run-${Date.now()}`;
const seen = new Set();
let done;
const allSeen = new Promise((resolve) => (done = resolve));

// A new ephemeral group reading from the beginning; it reports this run's events.
const sub = client.subscribe({ group: run, durable: false, batchSize: 100, startPoint: 'beginning' }, (delivery) => {
  for (const e of delivery.events) {
    if (!e.id.startsWith(run)) continue;
    console.log(`received ${e.id} from partition ${e.partition} at offset ${e.offset}: ${Buffer.from(e.data).toString()}`);
    seen.add(e.id);
  }
  if (seen.size === 10) done();
});

const acks = await client.publish(
  Array.from({ length: 10 }, (_, i) => ({ id: `${run}-${i}`, source: 'examples/publish-subscribe', type: 'example.greeting', subject: `user-${i % 3}`, data: `hello ${i}` })),
);
for (const [i, a] of acks.entries()) console.log(`published ${run}-${i} to partition ${a.partition} at offset ${a.offset}`);
await allSeen;
await sub.close();
await client.close();
