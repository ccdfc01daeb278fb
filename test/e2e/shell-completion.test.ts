import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FERRY_BIN } from '../support/process.js';

/**
 * `ferry completion bash|zsh|fish` loaded the ways docs/cli.md says, in the real shells (Debian's bash,
 * zsh and fish; .ci/run installs them), with `ferry` on PATH as after `npm install -g`.
 */
// Each case is its own shell process with its own files: they run side by side.
describe.concurrent('shell completion in real shells', { timeout: 90_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-completion-'));
  const bin = join(dir, 'bin');
  const env = {
    PATH: [bin, ...(process.env.PATH ?? '').split(delimiter)].join(delimiter),
    HOME: dir,
    TMPDIR: dir,
    TERM: 'xterm',
  };

  /** Runs a shell to completion (never inheriting the developer's rc files: each is started without them). */
  const shell = (command: string, args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve, reject) => {
      const child = spawn(command, args, {
        cwd: dir,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: 60_000,
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c) => (stdout += c));
      child.stderr.on('data', (c) => (stderr += c));
      child.once('error', reject);
      child.once('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    });

  beforeAll(async () => {
    mkdirSync(bin);
    writeFileSync(join(bin, 'ferry'), `#!/bin/sh\nexec '${process.execPath}' '${FERRY_BIN}' "$@"\n`);
    chmodSync(join(bin, 'ferry'), 0o755);
    // The zsh script once, by the installed command, both ways docs/cli.md puts it: a file to source,
    // and _ferry on $fpath.
    mkdirSync(join(dir, 'zfunc'));
    const zsh = await shell('sh', ['-c', 'ferry completion zsh > ferry.zsh && cp ferry.zsh zfunc/_ferry']);
    expect(zsh.code, zsh.stderr).toBe(0);
    // Drives an interactive zsh in a pseudo-terminal, as a person would: type the line, press TAB, and
    // collect what the line editor draws until the expected text shows (or ten seconds pass).
    writeFileSync(
      join(dir, 'tab.zsh'),
      `zmodload zsh/zpty || exit 3
setup=$1 line=$2 expected=$3
zpty z zsh -f -i
zpty -w z "PS1='%% '; $setup; print -r -- READY-\\$((1+1))"
zpty -r z ready '*READY-2*' || exit 4
zpty -r z ready '*% *'
zpty -w -n z "$line"$'\\t'
out=''
for i in {1..100}; do
  while zpty -r -t z chunk; do out+=$chunk; done
  [[ $out == *$expected* ]] && break
  sleep 0.1
done
zpty -d z
print -r -- "$out"
`,
    );
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('bash: `source <(ferry completion bash)` registers _ferry, which completes subcommands and options', async () => {
    const r = await shell('bash', [
      '--norc',
      '--noprofile',
      '-c',
      `source <(ferry completion bash) && complete -p ferry
at() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=(); _ferry; echo "\${COMPREPLY[*]}"; }
at ferry au
at ferry aws co
at ferry users list --j
compgen -W "$(_ferry_subcommands 'ferry ssh')" -- ro`,
    ]);
    expect(r.stderr).toBe('');
    expect(r.stdout.split('\n')).toEqual([
      'complete -o default -F _ferry ferry',
      'audit',
      'config',
      '--json',
      'rotate-ca',
      '',
    ]);
  });

  describe.each([
    [
      'sourced (source ferry.zsh)',
      'autoload -Uz compinit && compinit -u -d $TMPDIR/.zcompdump-$$; source $TMPDIR/ferry.zsh',
    ],
    [
      'from $fpath as _ferry, autoloaded by compinit',
      'fpath=($TMPDIR/zfunc $fpath) && autoload -Uz compinit && compinit -u -d $TMPDIR/.zcompdump-$$',
    ],
  ])('zsh, %s', (_how, setup) => {
    // Every case starts a fresh zsh: the first TAB after loading is the one an autoloaded file can miss.
    it.each([
      ['ferry au', 'ferry audit'],
      ['ferry aws co', 'ferry aws config'],
      ['ferry users list --j', 'ferry users list --json'],
      ['ferry a', 'assignments'],
    ])('TAB after "%s" shows "%s"', async (line, expected) => {
      const r = await shell('zsh', ['-f', join(dir, 'tab.zsh'), setup, line, expected]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain(expected);
      if (line === 'ferry a') for (const word of ['access', 'aws', 'audit']) expect(r.stdout).toContain(word);
    });
  });

  it('fish: `ferry completion fish | source` completes subcommands with their descriptions, and options', async () => {
    const r = await shell('fish', [
      '--no-config',
      '-c',
      `ferry completion fish | source
complete -C "ferry au"; echo ==
complete -C "ferry aws co"; echo ==
complete -C "ferry users list --j"; echo ==
complete -C "ferry ssh ro"`,
    ]);
    expect(r.stderr).toBe('');
    expect(r.stdout.split('==\n').map((block) => block.trim().split('\n'))).toEqual([
      ['audit\tthe audit trail'],
      [expect.stringMatching(/^config\twrite a profile for each AWS role/)],
      ['--json\tprint JSON'],
      [expect.stringMatching(/^rotate-ca\t/)],
    ]);
  });
});
