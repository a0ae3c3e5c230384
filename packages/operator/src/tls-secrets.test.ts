import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { parseStream, parseTokenSecret, type Stream } from '@hadron/core';
import type { KubeObject } from '@hadron/k8s';
import { statefulSet } from './objects.js';
import { newCaSecret, newServerSecret, pairOf, serverSecretProblem, usableCa } from './tls-secrets.js';

function stream(spec: Record<string, unknown>): Stream {
  const r = parseStream({ metadata: { name: 'events', uid: 'u1' }, spec: { partitions: 2, image: 'img', ...spec } });
  assert.ok(r.ok, JSON.stringify(r));
  return r.value;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const podSpec = (sts: KubeObject): any => (sts.spec as any).template.spec;

test('spec.tls mounts the Secret and sets the TLS env; no tls, no volume', () => {
  const plain = podSpec(statefulSet(stream({}), 'ns'));
  assert.equal(plain.volumes, undefined);
  assert.ok(!plain.containers[0].env.some((e: { name: string }) => e.name.startsWith('HADRON_TLS_')));
  const generated = podSpec(statefulSet(stream({ tls: {} }), 'ns'));
  assert.deepEqual(generated.volumes, [{ name: 'tls', secret: { secretName: 'events-tls' } }]);
  assert.deepEqual(generated.containers[0].volumeMounts[1], { name: 'tls', mountPath: '/etc/hadron/tls', readOnly: true });
  assert.deepEqual(
    generated.containers[0].env.filter((e: { name: string }) => e.name.startsWith('HADRON_TLS_')),
    [
      { name: 'HADRON_TLS_CERT_FILE', value: '/etc/hadron/tls/tls.crt' },
      { name: 'HADRON_TLS_KEY_FILE', value: '/etc/hadron/tls/tls.key' },
    ],
  );
  assert.deepEqual(podSpec(statefulSet(stream({ tls: { secretName: 'from-cert-manager' } }), 'ns')).volumes, [{ name: 'tls', secret: { secretName: 'from-cert-manager' } }]);
});

test('spec.tls is validated', () => {
  const bad = parseStream({ metadata: { name: 'events' }, spec: { partitions: 1, image: 'i', tls: { secretName: 'Not A Name' } } });
  assert.ok(!bad.ok && bad.errors.some((e) => /spec\.tls\.secretName.*RFC 1123/.test(e)), JSON.stringify(bad));
  const notObj = parseStream({ metadata: { name: 'events' }, spec: { partitions: 1, image: 'i', tls: true } });
  assert.ok(!notObj.ok && notObj.errors.some((e) => /spec\.tls must be an object/.test(e)));
});

test('operator-made certificates: a CA and a server certificate for every partition Service, re-issued when partitions grow', () => {
  const s = stream({ tls: {} });
  const caSecret = newCaSecret(s, 'prod');
  assert.equal((caSecret as { type?: string }).type, 'kubernetes.io/tls');
  assert.equal(caSecret.metadata.name, 'events-tls-ca');
  assert.equal(caSecret.metadata.ownerReferences?.[0]?.kind, 'Stream');
  // Stream pods watch the operator's Secrets for token keys: TLS Secrets are not tokens to them.
  assert.equal(parseTokenSecret(caSecret as never), null);
  const ca = usableCa(caSecret);
  assert.ok(ca);
  const server = newServerSecret(s, 'prod', ca);
  const pair = pairOf(server);
  assert.ok(pair);
  const cert = new X509Certificate(pair.cert);
  assert.ok(cert.verify(new X509Certificate(ca.cert).publicKey));
  for (const host of ['events-1.prod.svc.cluster.local', 'events.prod.svc']) assert.equal(cert.checkHost(host), host);
  assert.equal(cert.checkHost('events-0.events.prod.svc.cluster.local'), '*.events.prod.svc.cluster.local'); // pods via the headless Service
  assert.equal(Buffer.from((server as unknown as { data: Record<string, string> }).data['ca.crt']!, 'base64').toString(), ca.cert);
  assert.equal(serverSecretProblem(server, s, 'prod', ca), undefined);
  assert.equal(serverSecretProblem(undefined, s, 'prod', ca), 'missing');
  assert.equal(serverSecretProblem(server, stream({ tls: {}, partitions: 3 }), 'prod', ca), 'does not name events-2.prod.svc.cluster.local');
  const otherCa = usableCa(newCaSecret(s, 'prod'));
  assert.ok(otherCa);
  assert.equal(serverSecretProblem(server, s, 'prod', otherCa), 'not signed by the Stream CA');
});
