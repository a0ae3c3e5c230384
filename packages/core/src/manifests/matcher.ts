/**
 * Pipeline trigger matching on CloudEvents `type` (dot-separated tokens), following the
 * documented rules, not the original's buggy code (reference §2.9, §11.12):
 *
 *   pattern := token ("." token)*         token := literal | "*" | ">"
 *   - an empty trigger list, or an empty pattern, matches every type;
 *   - `*` matches exactly one token;
 *   - `>` matches one or more trailing tokens and is only valid as the last token;
 *   - a literal must equal its token; there are no prefix matches (`a.b` does not match `a.b.c`
 *     and `a.b.c` does not match `a.b`).
 */

export function matchesTrigger(pattern: string, type: string): boolean {
  if (pattern === '') return true;
  const p = pattern.split('.');
  const t = type.split('.');
  for (let i = 0; i < p.length; i++) {
    const seg = p[i]!;
    if (seg === '>') return i === p.length - 1 && t.length > i;
    if (i >= t.length) return false;
    if (seg !== '*' && seg !== t[i]) return false;
    if (seg === '*' && t[i] === '') return false;
  }
  return t.length === p.length;
}

export function matchesTriggers(triggers: readonly string[], type: string): boolean {
  if (triggers.length === 0) return true;
  return triggers.some((p) => matchesTrigger(p, type));
}

/** Problems with a trigger pattern, or null when valid (`>` only last, no empty tokens). */
export function checkTriggerPattern(pattern: string): string | null {
  if (pattern === '') return null;
  const segs = pattern.split('.');
  for (let i = 0; i < segs.length; i++) {
    const s = segs[i]!;
    if (s === '') return 'has an empty token';
    if (s === '>' && i !== segs.length - 1) return "uses '>' before the last token";
    if (s !== '>' && s !== '*' && /[*>]/.test(s)) return `token '${s}' mixes a wildcard with other characters`;
  }
  return null;
}
