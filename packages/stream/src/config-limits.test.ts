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

test('HADRON_REPLICATION_KEY must be printable text: binary data (raw bytes from a Secret) is refused by name', () => {
  const env = (key: string): Record<string, string> => ({ ...base, HADRON_REPLICATION_KEY: key });
  assert.equal(parseStreamConfig(env('aB3_-xYz09aB3_-xYz09aB3_-xYz09aB3_-xYz09abc')).replicationKey, 'aB3_-xYz09aB3_-xYz09aB3_-xYz09aB3_-xYz09abc');
  // 32 random bytes read from the environment as UTF-8: replacement characters and control bytes.
  const binary = Buffer.from([0x9f, 0x01, 0xff, 0x20, 0x41, 0xc3, 0x28, 0x00, 0x7f, 0x80, 0x10, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48]).toString('utf8').replace(/\0/g, '');
  assert.throws(() => parseStreamConfig(env(binary)), (e: unknown) => e instanceof HadronError && e.code === 'CONFIG_INVALID' && /HADRON_REPLICATION_KEY must be printable ASCII/.test(e.message));
  assert.throws(() => parseStreamConfig(env('has a space in it 1234')), /HADRON_REPLICATION_KEY must be printable ASCII/);
});
