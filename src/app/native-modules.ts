import { sep } from 'node:path';

/**
 * What to tell someone whose native addon (better-sqlite3) was compiled for another Node.js than the one
 * running: after switching Node versions (nvm, a distribution upgrade, CI's second runtime), loading it
 * fails with ERR_DLOPEN_FAILED and a message about NODE_MODULE_VERSION that names no fix. Null when the
 * error is something else.
 */
export function nativeModuleProblem(err: unknown): string | null {
  const { code, message = '' } = (err ?? {}) as { code?: string; message?: string };
  if (code !== 'ERR_DLOPEN_FAILED' && !message.includes('NODE_MODULE_VERSION')) return null;
  const file = /^The module '([^']+)'/.exec(message)?.[1] ?? /^(\S+\.node):/.exec(message)?.[1] ?? null;
  const at = file?.lastIndexOf(`${sep}node_modules${sep}`) ?? -1;
  const name = file && at >= 0 ? packageName(file.slice(at + `${sep}node_modules${sep}`.length)) : null;
  const root = file && at >= 0 ? file.slice(0, at) : null;
  const versions = /NODE_MODULE_VERSION (\d+)\.[\s\S]*?requires\s+NODE_MODULE_VERSION (\d+)/.exec(message);
  const what = name ?? 'a native module';
  const lines = [
    versions
      ? `${what} was built for another Node.js version (NODE_MODULE_VERSION ${versions[1]}); this is Node.js ${process.version}, which needs ${versions[2]}.`
      : `${what} could not be loaded by Node.js ${process.version}: ${message.split('\n')[0]}`,
    `fix: ${root ? `cd ${root} && ` : ''}npm rebuild ${name ?? ''}`.trimEnd(),
    '(or install ferry again with the Node.js you run it with)',
  ];
  return lines.join('\n');
}

const packageName = (rest: string): string => {
  const parts = rest.split(sep);
  return parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
};
