/**
 * Builds the YAML documents of a test cluster: a Stream, Tokens and the operator-style Secrets
 * holding each token's HMAC key and JWT.
 */
import { mintToken, type TokenSpec } from '@hadron/core';
import { stringify } from 'yaml';

export function streamManifest(name: string, partitions: number, retention?: { strategy: 'time' | 'retain'; retentionSeconds?: number }, extraSpec: Record<string, unknown> = {}): string {
  return stringify({
    apiVersion: 'hadron.rs/v1beta1',
    kind: 'Stream',
    metadata: { name },
    spec: {
      partitions,
      ...(retention ? { retentionPolicy: retention } : {}),
      image: 'hadron-stream:dev',
      pvcVolumeSize: '1Gi',
      ...extraSpec,
    },
  });
}

export function tokenManifest(name: string, spec: Partial<TokenSpec>): string {
  return stringify({ apiVersion: 'hadron.rs/v1beta1', kind: 'Token', metadata: { name }, spec });
}

/** A Secret as the operator makes it for a Token, and the JWT inside it. */
export function tokenSecret(name: string, key?: Uint8Array): { yaml: string; token: string; key: Uint8Array } {
  const m = mintToken(name, key);
  const yaml = stringify({
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'Opaque',
    metadata: {
      name,
      labels: { app: 'hadron', 'hadron.rs/component': 'hadron-stream', 'hadron.rs/controlled-by': 'hadron-operator' },
    },
    data: { hmac_key: Buffer.from(m.key).toString('base64'), token: Buffer.from(m.token).toString('base64') },
  });
  return { yaml, token: m.token, key: m.key };
}
