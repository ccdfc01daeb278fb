import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { Metrics } from '../../app/metrics.js';

const RULES_FILE = fileURLToPath(new URL('../../../deploy/prometheus/ferry-alerts.yml', import.meta.url));

describe('the Alertmanager rules file', () => {
  it('parses as YAML, names only metrics Ferry exports, and passes promtool', async () => {
    const doc = parse(readFileSync(RULES_FILE, 'utf8')) as {
      groups: Array<{ rules: Array<{ alert: string; expr: string }> }>;
    };
    const rules = doc.groups.flatMap((g) => g.rules);
    expect(rules.map((r) => r.alert)).toContain('FerryCriticalDetection');
    const metrics = new Metrics();
    metrics.alertRaised('root-activity', 'critical', false);
    metrics.alertDelivery('soc', 'failed');
    const exported = await metrics.registry.metrics();
    for (const r of rules)
      for (const name of r.expr.match(/ferry_[a-z_]+/g) ?? [])
        expect(exported, `${r.alert} uses ${name}`).toContain(`${name}{`);
    // promtool comes with Debian's prometheus package (.ci/run installs it)
    expect(existsSync('/usr/bin/promtool'), 'promtool (apt-get install prometheus)').toBe(true);
    const check = spawnSync('/usr/bin/promtool', ['check', 'rules', RULES_FILE], { encoding: 'utf8' });
    expect(check.status, check.stderr + check.stdout).toBe(0);
    expect(check.stdout).toContain('SUCCESS: 6 rules found');
  });
});
