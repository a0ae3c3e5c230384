// A worker for every stage of the `service-creation` pipeline of full.yaml. Each stage's output
// is remembered per (id, source, stage), so a redelivery returns the same output (the idempotency
// pattern of the original's pipeline example). Ctrl-C to stop.
//   HADRON_URL=http://127.0.0.1:7000 HADRON_TOKEN=$(cat .hadron/tokens/hadron-full-access) node examples/service-creation.mjs
import { createClient } from '@hadron/client';

const client = createClient({ url: process.env.HADRON_URL ?? 'http://127.0.0.1:7000', token: process.env.HADRON_TOKEN });
const done = new Map(); // `${id}/${source}/${stage}` → output event

const stages = ['deploy-service', 'setup-billing', 'setup-monitoring', 'notify-user', 'cleanup'];
const workers = stages.map((stage) =>
  client.pipelineStage('service-creation', stage, (d) => {
    const key = `${d.rootEvent.id}/${d.rootEvent.source}/${stage}`;
    let out = done.get(key);
    if (!out) {
      out = { id: d.rootEvent.id, source: `service-creation/${stage}`, type: `${stage}.v1`, data: { stage, inputs: Object.keys(d.inputs) } };
      done.set(key, out);
    }
    console.log(`${stage}: instance ${d.partition}/${d.offset} (root ${d.rootEvent.id}), inputs [${Object.keys(d.inputs).join(', ')}]`);
    return out;
  }),
);
for (const w of workers) w.done.catch((err) => console.error(`stage stopped: ${err.message}`));
process.once('SIGINT', async () => {
  await client.close();
});
await client.ready();
console.log(`serving ${stages.length} stages of service-creation; publish a service.created event`);
