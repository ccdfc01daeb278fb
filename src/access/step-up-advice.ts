/** Exactly what a CLI user does about each requirement. */
export function stepUpAdvice(require: string[]): string {
  const steps: string[] = [];
  if (require.includes('phishing-resistant-mfa'))
    steps.push(
      'Run `ferry login` (without --user) and sign in in the browser with your security key or passkey.',
    );
  else if (require.includes('mfa'))
    steps.push(
      'Run `ferry login` again and complete multi-factor authentication (the code from your authenticator app; register one at /account if you have none).',
    );
  else if (require.includes('reauthentication'))
    steps.push('Your sign-in is too old: run `ferry login` again.');
  if (require.includes('compliant-device'))
    steps.push(
      'Use a managed, compliant device: its device agent must send Ferry a device posture assertion (X-Ferry-Device-Posture).',
    );
  return steps.join(' ');
}
