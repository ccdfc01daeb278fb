/**
 * The admin pages that began as read-only lists; each now lives in its own file with its forms.
 * main.tsx imports them from here.
 */

export { OidcClients, ProxyApps, SamlProviders } from './apps.js';
export { AwsAccounts } from './aws.js';
export { Eligibilities } from './eligibilities.js';
export { SigningKeys } from './keys.js';
export { Policies } from './policies.js';
export { Reviews } from './reviews.js';
export { Scim } from './scim.js';
export { SshLogins } from './ssh.js';
