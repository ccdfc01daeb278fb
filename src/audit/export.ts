import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Reads published tree heads for `verify --against`: each path is a head file (one head as JSON, an
 * array of heads, or JSON lines) or a directory of such files, as the file exporter writes them.
 */
export function readHeads(paths: string[]): unknown[] {
  const out: unknown[] = [];
  for (const path of paths) {
    if (statSync(path).isDirectory()) {
      for (const name of readdirSync(path).sort())
        if (name.endsWith('.json') || name.endsWith('.jsonl')) out.push(...readHeads([join(path, name)]));
      continue;
    }
    const text = readFileSync(path, 'utf8').trim();
    if (text === '') continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      // JSON lines: one head per line
      for (const line of text.split('\n')) if (line.trim()) out.push(JSON.parse(line));
      continue;
    }
    if (Array.isArray(parsed)) out.push(...parsed);
    else out.push(parsed);
  }
  return out;
}
