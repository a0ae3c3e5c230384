import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HadronError } from '@hadron/core';
import { parseOperatorConfig } from './config.js';
import { review } from './webhook.js';

// WEBHOOK_CERT/KEY are checked after everything else, so placeholders do for the other checks.
const env = (over: Record<string, string | undefined> = {}): Record<string, string | undefined> => ({
  CLIENT_PORT: '7000',
  WEBHOOKS_PORT: '7001',
  METRICS_PORT: '7002',
  NAMESPACE: 'default',
  POD_NAME: 'hadron-operator-0',
  LEASE_DURATION_SECONDS: '60',
  LEASE_RENEW_SECONDS: '10',
  WEBHOOK_CERT: 'x',
  WEBHOOK_KEY: 'y',
  ...over,
});

const fails = (e: Record<string, string | undefined>, variable: string): void => {
  assert.throws(
    () => parseOperatorConfig(e),
    (err: unknown) => err instanceof HadronError && err.code === 'CONFIG_INVALID' && err.context.variable === variable && err.message.includes(variable),
  );
};

test('operator config: required variables and lease rules name the variable', () => {
  fails(env({ NAMESPACE: undefined }), 'NAMESPACE');
  fails(env({ CLIENT_PORT: 'x' }), 'CLIENT_PORT');
  fails(env({ LEASE_DURATION_SECONDS: '10', LEASE_RENEW_SECONDS: '10' }), 'LEASE_DURATION_SECONDS');
  fails(env({ LEASE_DURATION_SECONDS: '10', LEASE_RENEW_SECONDS: '2' }), 'LEASE_RENEW_SECONDS');
  fails(env({ LEASE_RENEW_SECONDS: '0' }), 'LEASE_RENEW_SECONDS');
  fails(env({ HADRON_LOG_LEVEL: 'loud' }), 'HADRON_LOG_LEVEL');
  fails(env(), 'WEBHOOK_CERT');
});

test('admission review: uid echoed in allow and reject, apiVersion echoed', () => {
  const obj = { apiVersion: 'hadron.rs/v1beta1', kind: 'Pipeline', metadata: { name: 'p' }, spec: { sourceStream: 's', maxParallel: 0, stages: [{ name: 'a' }] } };
  const r = review('pipelines', { apiVersion: 'admission.k8s.io/v1beta1', request: { uid: 'abc', operation: 'CREATE', object: obj } });
  assert.equal(r.apiVersion, 'admission.k8s.io/v1beta1');
  assert.deepEqual(r.response, { uid: 'abc', allowed: false, status: { code: 400, status: 'Failure', reason: 'Invalid', message: 'max_parallel of pipeline p must be > 0' } });
  const ok = review('pipelines', { apiVersion: 'admission.k8s.io/v1', request: { uid: 'def', operation: 'CREATE', object: { ...obj, spec: { ...obj.spec, maxParallel: 1 } } } });
  assert.deepEqual(ok.response, { uid: 'def', allowed: true });
});
