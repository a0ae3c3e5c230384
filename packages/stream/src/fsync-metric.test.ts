/**
 * Integration: `hadron_stream_fsync_duration_seconds` (docs/metrics.md; the HadronFsyncLatencyHigh
 * alert) counts the fdatasyncs of a real partition process's log: each fsync=true publish waits
 * for one of its own when publishes come one after another.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RawClient, startStream, testEvent } from '@hadron/testing';

/** Sum of the samples of `series` (a metric name with its suffix) whose labels include `label`. */
async function sample(url: string, series: string, label = ''): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => (l.startsWith(`${series}{`) || l.startsWith(`${series} `)) && l.includes(label))
    .reduce((n, l) => n + Number(l.split(' ').pop()), 0);
}

test('every fdatasync of the log is observed in hadron_stream_fsync_duration_seconds', async () => {
  // A flush interval far beyond the test: only the publishes' own fsyncs happen.
  await using c = await startStream({ env: { HADRON_FLUSH_INTERVAL_MS: '60000' } });
  const cl = new RawClient(c.url(0), c.tokens.full);
  try {
    const before = await sample(c.metricsUrl(0), 'hadron_stream_fsync_duration_seconds_count');
    await cl.publish([testEvent(1)], { fsync: false });
    assert.equal(await sample(c.metricsUrl(0), 'hadron_stream_fsync_duration_seconds_count'), before, 'an fsync=false publish does not wait for an fsync');
    for (let i = 2; i <= 6; i++) await cl.publish([testEvent(i)], { fsync: true });
    const count = await sample(c.metricsUrl(0), 'hadron_stream_fsync_duration_seconds_count');
    assert.ok(count - before >= 5, `5 fsync publishes one after another made ${count - before} fdatasyncs`);
    assert.ok((await sample(c.metricsUrl(0), 'hadron_stream_fsync_duration_seconds_sum')) > 0, 'durations are recorded');
    const inf = await sample(c.metricsUrl(0), 'hadron_stream_fsync_duration_seconds_bucket', 'le="+Inf"');
    assert.equal(inf, count, 'every observation is in the +Inf bucket');
  } finally {
    await cl.close();
  }
});
