import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ferryCommand } from './aws-commands.js';

/** How the AWS CLI (botocore) splits credential_process on Linux and macOS: Python's shlex.split. */
const botocoreSplit = (line: string): string[] =>
  JSON.parse(
    execFileSync(
      'python3',
      ['-c', 'import json,shlex,sys; print(json.dumps(shlex.split(sys.argv[1])))', line],
      {
        encoding: 'utf8',
      },
    ),
  ) as string[];

describe('the credential_process command line ferry aws config writes', () => {
  it.each([
    ['/usr/local/bin/node', '/usr/local/lib/node_modules/ferry/bin/ferry.js'],
    ['/home/jane doe/.nvm/versions/node/v24.4.0/bin/node', '/home/jane doe/src/ferry/bin/ferry.js'],
    ["/opt/o'brien/node", '/tmp/$HOME/`id`/"quoted"\\back/ferry.js'],
  ])(
    'names node and the ferry script by absolute path, split back exactly as the AWS CLI does (%s)',
    (node, script) => {
      const line = `${ferryCommand(node, script, 'linux')} creds --format credential_process`;
      expect(botocoreSplit(line)).toEqual([node, script, 'creds', '--format', 'credential_process']);
    },
  );

  it('defaults to the running node and the real path of the running script, not a PATH lookup', () => {
    const [node] = botocoreSplit(ferryCommand());
    expect(node).toBe(process.execPath);
    expect(ferryCommand()).not.toMatch(/^ferry /);
  });

  it('double-quotes paths with spaces on Windows', () => {
    expect(ferryCommand('C:\\Program Files\\nodejs\\node.exe', 'C:\\ferry\\bin\\ferry.js', 'win32')).toBe(
      '"C:\\Program Files\\nodejs\\node.exe" "C:\\ferry\\bin\\ferry.js"',
    );
  });
});
