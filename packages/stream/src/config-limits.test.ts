import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HadronError } from '@hadron/core';
import { parseStreamConfig } from './config.js';

const base = {
  CLIENT_PORT: '7000',
  SERVER_PORT: '7001',
  METRICS_PORT: '7002',
  NAMESPACE: 'default',
  STREAM: 'events',
  STATEFULSET: 'events',
  POD_NAME: 'events-0',
};

test('limits have documented defaults and are validated against each other', () => {
  const cfg = parseStreamConfig(base);
  assert.deepEqual(
    {
      maxEventsPerRequest: cfg.maxEventsPerRequest,
      maxInflightRequestBytes: cfg.maxInflightRequestBytes,
      maxSubscriberBufferBytes: cfg.maxSubscriberBufferBytes,
      maxConnections: cfg.maxConnections,
      handshakeTimeoutMs: cfg.handshakeTimeoutMs,
      idleTimeoutMs: cfg.idleTimeoutMs,
      requestBodyTimeoutMs: cfg.requestBodyTimeoutMs,
    },
    {
      maxEventsPerRequest: 10_000,
      maxInflightRequestBytes: 256 * 1024 * 1024,
      maxSubscriberBufferBytes: 64 * 1024 * 1024,
      maxConnections: 4096,
      handshakeTimeoutMs: 10_000,
      idleTimeoutMs: 300_000,
      requestBodyTimeoutMs: 30_000,
    },
  );
  const bad = (env: Record<string, string>, variable: string): void =>
    assert.throws(() => parseStreamConfig({ ...base, ...env }), (e: unknown) => e instanceof HadronError && e.code === 'CONFIG_INVALID' && e.message.includes(variable));
  bad({ HADRON_MAX_INFLIGHT_REQUEST_BYTES: String(1024 * 1024) }, 'HADRON_MAX_INFLIGHT_REQUEST_BYTES');
  bad({ HADRON_MAX_SUBSCRIBER_BUFFER_BYTES: '2048' }, 'HADRON_MAX_SUBSCRIBER_BUFFER_BYTES');
  bad({ HADRON_MAX_EVENTS_PER_REQUEST: '0' }, 'HADRON_MAX_EVENTS_PER_REQUEST');
  bad({ HADRON_MAX_CONNECTIONS: 'many' }, 'HADRON_MAX_CONNECTIONS');
});
