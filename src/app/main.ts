import { Command, CommanderError } from 'commander';
import { registerAccessCommands } from '../cli/access-commands.js';
import { registerActivityCommands } from '../cli/activity-commands.js';
import { registerAdminRightsCommands } from '../cli/admin-rights-commands.js';
import { registerAlertCommands } from '../cli/alert-commands.js';
import { registerAwsCommands } from '../cli/aws-commands.js';
import { ApiError, ServerUnreachable } from '../cli/client.js';
import { registerClientCommands } from '../cli/commands.js';
import { registerCompletionCommand } from '../cli/completion.js';
import { UsageError } from '../cli/context.js';
import { registerExecCommands } from '../cli/exec-commands.js';
import { registerIicCommands } from '../cli/iic-commands.js';
import { registerLoginCommands } from '../cli/login-commands.js';
import { registerOidcCommands } from '../cli/oidc-commands.js';
import { lines, note, t } from '../cli/output.js';
import { registerPimCommands } from '../cli/pim-commands.js';
import { registerPolicyCommands } from '../cli/policy-commands.js';
import { registerProxyCommands } from '../cli/proxy-commands.js';
import { registerReviewCommands } from '../cli/review-commands.js';
import { registerSamlCommands } from '../cli/saml-commands.js';
import { registerScimCommands } from '../cli/scim-commands.js';
import { registerSshCommands } from '../cli/ssh-commands.js';
import { FERRY_VERSION } from '../version.js';
import { OperatorError, registerOperatorCommands } from './commands.js';
import { nativeModuleProblem } from './native-modules.js';

/** The `ferry` command: client commands talk HTTP to a server; operator commands work beside its config. */
export async function main(argv: string[]): Promise<number> {
  const program = new Command('ferry')
    .description('Ferry: corporate identity to short-lived AWS access')
    .version(FERRY_VERSION)
    .exitOverride()
    .showHelpAfterError();
  registerClientCommands(program);
  registerAccessCommands(program);
  registerAdminRightsCommands(program);
  registerSamlCommands(program);
  registerLoginCommands(program);
  registerAwsCommands(program);
  registerIicCommands(program);
  registerExecCommands(program);
  registerOidcCommands(program);
  // The migration planner loads the AWS SDK and the policy simulator (≈150 ms): only for the commands
  // that may need it, so `ferry creds` as a credential_process starts fast.
  const words = argv.slice(2);
  if (
    words.length === 0 ||
    words.some((w) => ['migrate', 'access', 'help', '--help', '-h', 'completion'].includes(w))
  ) {
    (await import('../cli/migrate-commands.js')).registerMigrateCommands(program);
  }
  registerPimCommands(program);
  registerReviewCommands(program);
  registerScimCommands(program);
  registerSshCommands(program);
  registerProxyCommands(program);
  registerPolicyCommands(program);
  registerActivityCommands(program);
  registerAlertCommands(program);
  registerOperatorCommands(program);
  registerCompletionCommand(program);
  try {
    await program.parseAsync(argv);
    return Number(process.exitCode ?? 0);
  } catch (err) {
    return report(err);
  }
}

function report(err: unknown): number {
  const native = nativeModuleProblem(err);
  if (native) {
    note(t`ferry: ${lines(native)}\n`);
    return 1;
  }
  if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
  // By name: the classes live in modules that load only when an operator command runs.
  if ((err as Error)?.name === 'ConfigInvalid' || err instanceof OperatorError || err instanceof UsageError) {
    note(t`ferry: ${lines((err as Error).message)}\n`);
    return 2;
  }
  if (err instanceof ApiError) {
    const title = err.problem?.title ?? `HTTP ${err.status}`;
    // The problem comes from the server and may quote what someone typed: each field escaped whole.
    note(t`ferry: ${title}${err.problem?.detail ? t`: ${err.problem.detail}` : ''}\n`);
    if (err.status === 401 && !err.problem?.detail?.includes('ferry login'))
      note(t`hint: set FERRY_TOKEN (ferry admin token create --name NAME)\n`);
    return 1;
  }
  if (err instanceof Error && err.name === 'MigrationFailed') {
    note(t`ferry: ${lines(err.message)}: ${lines((err.cause as Error)?.message ?? '')}\n`);
    return 1;
  }
  if (err instanceof ServerUnreachable || err instanceof Error) {
    note(t`ferry: ${lines(err.message)}\n`);
    return 1;
  }
  note(t`ferry: ${String(err)}\n`);
  return 1;
}
