/**
 * Writes the CRDs generated from the shared types (crds.ts) as YAML files into a directory,
 * by default the chart's `charts/hadron-operator/crds/`. Usage: `node dist/gen-crds.js [dir]`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { hadronCrds } from './crds.js';

export const CRD_HEADER = '# Generated from packages/k8s/src/crds.ts by `npm run gen-crds -w @hadron/k8s`. Do not edit.\n';

export function renderCrdFiles(): Array<{ file: string; text: string }> {
  return hadronCrds().map(({ file, object }) => ({ file, text: CRD_HEADER + stringify(object, { lineWidth: 0 }) }));
}

const here = path.dirname(fileURLToPath(import.meta.url));
export const CHART_CRDS_DIR = path.resolve(here, '..', '..', '..', 'charts', 'hadron-operator', 'crds');

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const dir = path.resolve(process.argv[2] ?? CHART_CRDS_DIR);
  fs.mkdirSync(dir, { recursive: true });
  for (const { file, text } of renderCrdFiles()) fs.writeFileSync(path.join(dir, file), text);
  process.stdout.write(`wrote ${renderCrdFiles().length} CRDs to ${dir}\n`);
}
