/** One segment of a key path: a mapping key or a list index. */
export type PathSegment = string | number;
export type KeyPath = readonly PathSegment[];

/**
 * One problem found in a config file. `path` is the key path as people write it
 * (`resources[1].upstream.port`, `roles.engineer.allow[0]`), empty for a YAML syntax error that
 * belongs to no key. `line` is 1-based.
 */
export interface ConfigIssue {
  readonly file: string;
  readonly line: number;
  readonly path: string;
  readonly message: string;
}

const BARE_KEY = /^[A-Za-z0-9_-]+$/;

/** `['resources', 1, 'upstream', 'port']` → `resources[1].upstream.port`. */
export function formatPath(path: KeyPath): string {
  let text = '';
  for (const segment of path) {
    if (typeof segment === 'number') text += `[${segment}]`;
    else if (BARE_KEY.test(segment)) text += text === '' ? segment : `.${segment}`;
    else text += `[${JSON.stringify(segment)}]`;
  }
  return text;
}

/**
 * The inverse of {@link formatPath}: `roles.engineer.allow[0].paths[1]` → segments. Text that
 * is not a well-formed path yields the segments read so far.
 */
export function parsePath(text: string): PathSegment[] {
  const segments: PathSegment[] = [];
  const pattern = /\.?([A-Za-z0-9_-]+)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]/y;
  while (pattern.lastIndex < text.length) {
    const match = pattern.exec(text);
    if (!match) break;
    if (match[1] !== undefined) segments.push(match[1]);
    else if (match[2] !== undefined) segments.push(Number(match[2]));
    else segments.push(JSON.parse(match[3] ?? '""') as string);
  }
  return segments;
}

/** The one-line form every tool prints: `file:line key.path: message` (`file:line: message` without a path). */
export function formatIssue(issue: ConfigIssue): string {
  return issue.path === ''
    ? `${issue.file}:${issue.line}: ${issue.message}`
    : `${issue.file}:${issue.line} ${issue.path}: ${issue.message}`;
}

/** Orders issues by line (stable, so issues on one line keep the order they were found in) and drops repeats. */
export function sortIssues(issues: readonly ConfigIssue[]): ConfigIssue[] {
  const seen = new Set<string>();
  const unique: ConfigIssue[] = [];
  for (const issue of issues) {
    const key = formatIssue(issue);
    if (seen.has(key)) continue;
    seen.add(key);
    unique.push(issue);
  }
  return unique.sort((a, b) => a.line - b.line);
}

/**
 * The known word closest to a misspelt one, when it is close enough to be a likely typo
 * (edit distance at most a third of the word, and at least 1).
 */
export function closestWord(word: string, candidates: Iterable<string>): string | null {
  const limit = Math.max(1, Math.floor(word.length / 3));
  let best: string | null = null;
  let bestDistance = limit + 1;
  for (const candidate of candidates) {
    const distance = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** `; did you mean "listen"?` or nothing. */
export function didYouMean(word: string, candidates: Iterable<string>): string {
  const match = closestWord(word, candidates);
  return match === null ? '' : `; did you mean ${JSON.stringify(match)}?`;
}

/** Levenshtein distance with adjacent transpositions counted as one edit. */
function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[] = new Array<number>(rows * cols).fill(0);
  const at = (i: number, j: number): number => d[i * cols + j] ?? 0;
  for (let i = 0; i < rows; i++) d[i * cols] = i;
  for (let j = 0; j < cols; j++) d[j] = j;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let value = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) value = Math.min(value, at(i - 2, j - 2) + 1);
      d[i * cols + j] = value;
    }
  }
  return at(a.length, b.length);
}
