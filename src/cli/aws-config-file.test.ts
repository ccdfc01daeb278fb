import { describe, expect, it } from 'vitest';
import { applyProfiles, type ManagedProfile } from './aws-config-file.js';

const SERVER = 'https://ferry.example';
const profile = (name: string, cp = `ferry creds --role ${name}`): ManagedProfile => ({
  name,
  keys: [
    ['credential_process', cp],
    ['endpoint_url', 'http://127.0.0.1:5000'],
  ],
  defaults: [['region', 'us-east-1']],
});

describe('the AWS config file editor behind `ferry aws config`', () => {
  it('adds profiles after the person’s own, which stay byte for byte', () => {
    const own = '# my settings\n[default]\nregion = eu-west-1\n\n[profile personal]\noutput = table\n';
    const r = applyProfiles(own, SERVER, [profile('ferry-a-dev')]);
    expect(r.added).toEqual(['ferry-a-dev']);
    expect(r.text.startsWith(own)).toBe(true);
    expect(r.text).toContain(
      `[profile ferry-a-dev]\n# managed by ferry for ${SERVER} (ferry aws config)\ncredential_process = ferry creds --role ferry-a-dev\nendpoint_url = http://127.0.0.1:5000\nregion = us-east-1\n`,
    );
  });

  it('is idempotent: a second run with the same roles changes nothing', () => {
    const once = applyProfiles('', SERVER, [profile('ferry-a-dev'), profile('ferry-a-ghost')]);
    const twice = applyProfiles(once.text, SERVER, [profile('ferry-a-dev'), profile('ferry-a-ghost')]);
    expect(twice).toMatchObject({ text: once.text, added: [], updated: [], removed: [] });
  });

  it('removes only its own profiles that are no longer entitled, and keeps the person’s edits in the rest', () => {
    const once = applyProfiles('[profile personal]\nregion = eu-west-1\n', SERVER, [
      profile('ferry-a-dev'),
      profile('ferry-a-ghost'),
    ]);
    const edited = once.text.replace('region = us-east-1', 'region = eu-central-1\noutput = yaml');
    const r = applyProfiles(edited, SERVER, [profile('ferry-a-dev', 'ferry creds --role new')]);
    expect(r.removed).toEqual(['ferry-a-ghost']);
    expect(r.updated).toEqual(['ferry-a-dev']);
    expect(r.text).not.toContain('ferry-a-ghost');
    expect(r.text).toContain('credential_process = ferry creds --role new');
    expect(r.text).toContain('region = eu-central-1\noutput = yaml');
    expect(r.text).toContain('[profile personal]\nregion = eu-west-1\n');
  });

  it('never overwrites a profile the person wrote under one of its names, nor another server’s', () => {
    const theirs = '[profile ferry-a-dev]\ncredential_process = my-own-tool\n';
    const r = applyProfiles(theirs, SERVER, [profile('ferry-a-dev')]);
    expect(r.skipped).toEqual(['ferry-a-dev']);
    expect(r.text).toBe(theirs);
    const other = applyProfiles('', 'https://other.example', [profile('ferry-b-dev')]).text;
    expect(applyProfiles(other, SERVER, []).text).toBe(other);
  });
});

describe('re-running on its own output', () => {
  it('after the person’s profile, a second run reports no update', () => {
    const once = applyProfiles('[profile personal]\nregion = eu-west-1\noutput = table\n', SERVER, [
      profile('ferry-a-dev'),
    ]);
    const twice = applyProfiles(once.text, SERVER, [profile('ferry-a-dev')]);
    expect(twice.updated).toEqual([]);
    expect(twice.text).toBe(once.text);
  });
});
