/**
 * Edits an AWS config file (INI) the way a person would: sections Ferry did not write are left
 * byte for byte; in the sections it wrote (marked by a comment naming the Ferry server) only the keys
 * it owns change, so a region or output the person added stays.
 */

export interface ManagedProfile {
  /**
   * profile name, e.g. ferry-account1-developer; a name starting `sso-session ` is an AWS CLI v2
   * `[sso-session NAME]` section rather than a `[profile NAME]`
   */
  name: string;
  /** keys Ferry owns in that profile, in the order written */
  keys: Array<[string, string]>;
  /** keys written only when the profile is created (the person may change them later) */
  defaults?: Array<[string, string]>;
}

interface Section {
  /** the header line, or null for the lines before the first section */
  header: string | null;
  name: string | null;
  lines: string[];
}

const MARKER = '# managed by ferry for ';
/** how a section name read from `[sso-session NAME]` starts (parse keeps the word) */
export const SSO_SESSION = 'sso-session ';
const markerFor = (server: string) => `${MARKER}${server} (ferry aws config)`;

function parse(text: string): Section[] {
  const sections: Section[] = [{ header: null, name: null, lines: [] }];
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*\[\s*(?:profile\s+)?([^\]]+?)\s*\]\s*$/.exec(line);
    if (m) sections.push({ header: line, name: m[1]!, lines: [] });
    else sections[sections.length - 1]!.lines.push(line);
  }
  // split() leaves one empty string after a final newline
  const last = sections[sections.length - 1]!;
  if (last.lines.length > 0 && last.lines[last.lines.length - 1] === '') last.lines.pop();
  return sections;
}

const managedBy = (section: Section): string | null => {
  const line = section.lines.find((l) => l.startsWith(MARKER));
  return line ? line.slice(MARKER.length).replace(/ \(ferry aws config\)$/, '') : null;
};

export interface ConfigChanges {
  text: string;
  added: string[];
  updated: string[];
  removed: string[];
  /** profiles named like one of Ferry's that the person wrote themselves: left alone */
  skipped: string[];
}

export function applyProfiles(text: string, server: string, profiles: ManagedProfile[]): ConfigChanges {
  const sections = parse(text);
  const wanted = new Map(profiles.map((p) => [p.name, p]));
  const out: Section[] = [];
  const changes: ConfigChanges = { text: '', added: [], updated: [], removed: [], skipped: [] };
  const seen = new Set<string>();
  for (const section of sections) {
    const owner = section.name ? managedBy(section) : null;
    const profile = section.name ? wanted.get(section.name) : undefined;
    if (section.name && profile && owner !== server) {
      // The person's own profile (or another server's) under that name: never overwritten.
      changes.skipped.push(section.name);
      seen.add(section.name);
      out.push(section);
      continue;
    }
    if (owner === server && section.name && !profile) {
      changes.removed.push(section.name);
      continue;
    }
    if (profile && section.name) {
      seen.add(section.name);
      const before = section.lines.join('\n').trimEnd();
      const owned = new Set(profile.keys.map(([k]) => k));
      const kept = section.lines.filter((l) => {
        const key = /^\s*([\w.-]+)\s*=/.exec(l)?.[1];
        return !(key && owned.has(key)) && !l.startsWith(MARKER);
      });
      // Ferry's lines first, then whatever else the person keeps there (trailing blank lines last).
      while (kept.length > 0 && kept[kept.length - 1]!.trim() === '') kept.pop();
      section.lines = [markerFor(server), ...profile.keys.map(([k, v]) => `${k} = ${v}`), ...kept, ''];
      if (section.lines.join('\n').trimEnd() !== before) changes.updated.push(section.name);
      out.push(section);
      continue;
    }
    out.push(section);
  }
  for (const profile of profiles) {
    if (seen.has(profile.name)) continue;
    const last = out[out.length - 1]!;
    if (last.lines.length > 0 && last.lines[last.lines.length - 1]!.trim() !== '') last.lines.push('');
    out.push({
      header: profile.name.startsWith(SSO_SESSION) ? `[${profile.name}]` : `[profile ${profile.name}]`,
      name: profile.name,
      lines: [
        markerFor(server),
        ...profile.keys.map(([k, v]) => `${k} = ${v}`),
        ...(profile.defaults ?? []).map(([k, v]) => `${k} = ${v}`),
        '',
      ],
    });
    changes.added.push(profile.name);
  }
  const lines = out.flatMap((s) => (s.header === null ? s.lines : [s.header, ...s.lines]));
  while (lines.length > 0 && lines[lines.length - 1]!.trim() === '') lines.pop();
  changes.text = lines.length > 0 ? `${lines.join('\n')}\n` : '';
  return changes;
}

/** One setting of one profile (`region` of `[profile ferry-account1-developer]`), or null. */
export function profileSetting(text: string, profile: string, key: string): string | null {
  const section = parse(text).find((s) => s.name === profile);
  for (const line of section?.lines ?? []) {
    const m = /^\s*([\w.-]+)\s*=\s*(.*?)\s*$/.exec(line);
    if (m && m[1] === key) return m[2]!;
  }
  return null;
}
