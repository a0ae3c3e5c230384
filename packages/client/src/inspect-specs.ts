/**
 * Pipeline and Token specs as the stream's partitions know them (`stream.Inspection`
 * ListPipelines / ListTokens; docs/inspection.md): what `client.pipelines()` and
 * `client.tokens()` return. Every partition holds the same view, so the first partition that
 * answers is enough; a refusal of the credentials is final and not tried elsewhere.
 */
import { HadronError } from '@hadron/core';
import { ListPipelinesRequestSchema, ListPipelinesResponseSchema, ListTokensRequestSchema, ListTokensResponseSchema, METHOD, create, fromBinary, toBinary } from '@hadron/proto';
import type { PartitionCaller } from './inspect.js';

/** A Pipeline whose source is the stream, with its stage graph. */
export interface PipelineSpecInfo {
  name: string;
  triggers: string[];
  maxParallel: number;
  /** beginning | latest | offset */
  startLocation: string;
  stages: Array<{ name: string; dependencies: string[]; after: string[] }>;
}

/** A Token's name and permissions (never its key or JWT). */
export interface TokenInfo {
  name: string;
  all: boolean;
  streams: { pub: string[]; sub: string[] };
  exchanges: { pub: string[]; sub: string[] };
  endpoints: { pub: string[]; sub: string[] };
}

async function firstAnswer(call: PartitionCaller, partitions: number[], method: string, req: Uint8Array, timeoutMs: number): Promise<Buffer> {
  let last: unknown = new HadronError('UNAVAILABLE', 'the stream has no partition to ask');
  for (const p of partitions) {
    try {
      return await call(p, method, req, timeoutMs);
    } catch (err) {
      if (err instanceof HadronError && (err.code === 'UNAUTHENTICATED' || err.code === 'PERMISSION_DENIED')) throw err;
      last = err;
    }
  }
  throw last;
}

export async function listPipelines(call: PartitionCaller, partitions: number[], timeoutMs: number): Promise<PipelineSpecInfo[]> {
  const res = fromBinary(ListPipelinesResponseSchema, await firstAnswer(call, partitions, METHOD.listPipelines, toBinary(ListPipelinesRequestSchema, create(ListPipelinesRequestSchema, {})), timeoutMs));
  return res.pipelines.map((p) => ({
    name: p.name,
    triggers: [...p.triggers],
    maxParallel: p.maxParallel,
    startLocation: p.startLocation,
    stages: p.stages.map((s) => ({ name: s.name, dependencies: [...s.dependencies], after: [...s.after] })),
  }));
}

export async function listTokens(call: PartitionCaller, partitions: number[], timeoutMs: number): Promise<TokenInfo[]> {
  const res = fromBinary(ListTokensResponseSchema, await firstAnswer(call, partitions, METHOD.listTokens, toBinary(ListTokensRequestSchema, create(ListTokensRequestSchema, {})), timeoutMs));
  const perms = (x: { pub: string[]; sub: string[] } | undefined): { pub: string[]; sub: string[] } => ({ pub: [...(x?.pub ?? [])], sub: [...(x?.sub ?? [])] });
  return res.tokens.map((t) => ({ name: t.name, all: t.all, streams: perms(t.streams), exchanges: perms(t.exchanges), endpoints: perms(t.endpoints) }));
}
