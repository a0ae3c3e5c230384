/**
 * Token credentials for `hadron dev`, made exactly as the operator makes them (reference §3.5):
 * per Token a Secret named after it, labelled `app=hadron, hadron.rs/component=hadron-stream,
 * hadron.rs/controlled-by=hadron-operator`, with `data.hmac_key` (128 random bytes) and
 * `data.token` (an HS512 JWT `{jti, sub}` signed with that key), both base64.
 *
 * The Secrets live as YAML in the state directory, which the partition servers read along with
 * the user's manifests; the bare JWT of each goes to `tokens/<name>` for scripts. An existing
 * Secret is reused, so tokens survive restarts; deleting a Token deletes its Secret (revoking it).
 */
import fs from 'node:fs';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { CANONICAL_LABELS, mintToken, parseTokenSecret, signJwt, type Token } from '@hadron/core';
import { randomUUID } from 'node:crypto';

export interface TokenSyncResult {
  created: string[];
  removed: string[];
  /** Every current token's JWT, by Token name. */
  tokens: Map<string, string>;
}

/** Writes `file` atomically (temp file + rename) with the given mode. */
export function writeAtomic(file: string, content: string, mode = 0o644): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, content, { mode });
  fs.renameSync(tmp, file);
}

export function secretYaml(name: string, key: Uint8Array, token: string): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'Opaque',
    metadata: { name, labels: { ...CANONICAL_LABELS } },
    data: { hmac_key: Buffer.from(key).toString('base64'), token: Buffer.from(token).toString('base64') },
  });
}

function readSecret(file: string): { key: Buffer; token: string | undefined } | undefined {
  try {
    const r = parseTokenSecret(parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>);
    return r?.ok ? { key: r.value.hmacKey, token: r.value.token } : undefined;
  } catch {
    return undefined;
  }
}

/** Makes the Secrets and token files match the Tokens. */
export function syncTokens(tokens: ReadonlyMap<string, Token>, secretsDir: string, tokensDir: string): TokenSyncResult {
  fs.mkdirSync(secretsDir, { recursive: true });
  fs.mkdirSync(tokensDir, { recursive: true, mode: 0o700 });
  const created: string[] = [];
  const removed: string[] = [];
  const out = new Map<string, string>();
  for (const name of [...tokens.keys()].sort()) {
    const file = path.join(secretsDir, `${name}.yaml`);
    const existing = readSecret(file);
    let jwt: string;
    if (existing?.token) jwt = existing.token;
    else if (existing) {
      // A Secret without its JWT (e.g. written by hand): sign a new one with the same key.
      jwt = signJwt({ jti: randomUUID(), sub: name }, existing.key);
      writeAtomic(file, secretYaml(name, existing.key, jwt), 0o600);
    } else {
      const m = mintToken(name);
      jwt = m.token;
      writeAtomic(file, secretYaml(name, m.key, jwt), 0o600);
      created.push(name);
    }
    const tokenFile = path.join(tokensDir, name);
    let current: string | undefined;
    try {
      current = fs.readFileSync(tokenFile, 'utf8');
    } catch {
      current = undefined;
    }
    if (current !== jwt) writeAtomic(tokenFile, jwt, 0o600);
    out.set(name, jwt);
  }
  for (const f of fs.readdirSync(secretsDir)) {
    const m = /^(.+)\.yaml$/.exec(f);
    if (!m || tokens.has(m[1]!)) continue;
    fs.rmSync(path.join(secretsDir, f), { force: true });
    fs.rmSync(path.join(tokensDir, m[1]!), { force: true });
    removed.push(m[1]!);
  }
  return { created, removed, tokens: out };
}
