import { describe, expect, it } from 'vitest';
import { redactUrl } from './sinks.js';

describe('a webhook URL as Ferry shows it (list, API, audit)', () => {
  it.each([
    ['https://siem.example/ingest', 'https://siem.example/ingest'],
    [
      'https://u:p@siem.example/ingest?token=abc&tenant=x',
      'https://redacted@siem.example/ingest?token=redacted&tenant=redacted',
    ],
    // keys in the path, as many incoming-webhook services put them
    [
      'https://hooks.example/services/T0123/B0456/q8Vd3kR9xZ2mN7pL4tW6yH1c',
      'https://hooks.example/services/T0123/B0456/redacted',
    ],
    [
      'https://events.example/v2/integrations/0b1e7f0c9a2d4e6f8a1b3c5d7e9f1a2b/alerts',
      'https://events.example/v2/integrations/redacted/alerts',
    ],
    // ordinary words and short ids stay readable
    ['https://siem.example/api/v1/ferry-alerts/ingest', 'https://siem.example/api/v1/ferry-alerts/ingest'],
  ])('%s is shown as %s', (given, shown) => {
    expect(redactUrl(new URL(given))).toBe(shown);
  });
});
