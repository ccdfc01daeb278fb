/**
 * The browser half of registering a passkey: the server's creation options (JSON, binary fields as
 * base64url) become navigator.credentials.create()'s, and its answer becomes the JSON shape
 * @simplewebauthn/server reads. A few lines instead of a dependency (as /static/webauthn.js does).
 */

const fromB64url = (s: string): ArrayBuffer => {
  const bin = atob(s.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((s.length + 3) % 4));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out.buffer;
};

const toB64url = (buf: ArrayBuffer): string => {
  const bytes = new Uint8Array(buf);
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
};

interface CreationOptionsJson {
  challenge: string;
  user: { id: string; name: string; displayName: string };
  excludeCredentials?: Array<{ id: string; type: 'public-key'; transports?: string[] }>;
  [key: string]: unknown;
}

/**
 * Why passkeys cannot work here, or null when they can: browsers offer WebAuthn only in a secure
 * context (https, or http://localhost), and a credential is bound to Ferry's public address (its RP
 * ID and origin), so the console must be opened there.
 */
export function passkeyObstacle(rp: { rpId: string; origin: string } | null): string | null {
  if (!rp) return 'This Ferry does not offer passkeys or security keys.';
  if (!window.isSecureContext || !('PublicKeyCredential' in window))
    return `Passkeys cannot work on this address: browsers allow them only on https or on localhost. Open the console at ${rp.origin} (ask your administrator for Ferry’s https address).`;
  const host = window.location.hostname;
  if (host !== rp.rpId && !host.endsWith(`.${rp.rpId}`))
    return `Passkeys cannot work on this address: they are bound to ${rp.rpId}, and this page is on ${host}. Open the console at ${rp.origin}.`;
  if (window.location.origin !== rp.origin)
    return `Passkeys are registered at Ferry’s own address. Open the console at ${rp.origin} to add one.`;
  return null;
}

/** Asks the browser's authenticator for a new credential; returns the RegistrationResponseJSON. */
export async function createPasskey(options: CreationOptionsJson): Promise<Record<string, unknown>> {
  const publicKey = {
    ...options,
    challenge: fromB64url(options.challenge),
    user: { ...options.user, id: fromB64url(options.user.id) },
    excludeCredentials: (options.excludeCredentials ?? []).map((c) => ({ ...c, id: fromB64url(c.id) })),
  } as unknown as PublicKeyCredentialCreationOptions;
  const cred = (await navigator.credentials.create({ publicKey })) as PublicKeyCredential | null;
  if (!cred) throw new Error('The browser returned no passkey. Try again.');
  const response = cred.response as AuthenticatorAttestationResponse;
  return {
    id: cred.id,
    rawId: toB64url(cred.rawId),
    type: cred.type,
    clientExtensionResults: cred.getClientExtensionResults(),
    authenticatorAttachment: cred.authenticatorAttachment ?? undefined,
    response: {
      clientDataJSON: toB64url(response.clientDataJSON),
      attestationObject: toB64url(response.attestationObject),
      transports: response.getTransports ? response.getTransports() : [],
    },
  };
}

/** A person's words for what navigator.credentials.create() threw. */
export function passkeyError(err: unknown): string {
  const name = (err as { name?: string } | null)?.name;
  if (name === 'NotAllowedError')
    return 'The passkey was not created: you cancelled, or it timed out. Try again.';
  if (name === 'InvalidStateError') return 'This device already holds a passkey of yours for Ferry.';
  if (name === 'SecurityError')
    return 'The browser refused: this address does not match Ferry’s (the passkey’s relying party).';
  return (err as Error)?.message ?? 'Something went wrong. Try again.';
}
