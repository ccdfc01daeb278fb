import type { DirectoryPrincipal } from '../../identity/principal-of.js';
import { NAMEID_FORMAT, type SamlAttribute } from './response.js';
import type { ServiceProvider } from './service-providers.js';

/** The user's NameID in the format the SP registered. */
export function nameIdFor(
  sp: Pick<ServiceProvider, 'nameIdFormat'>,
  user: DirectoryPrincipal,
  transientId: string,
) {
  switch (sp.nameIdFormat) {
    case NAMEID_FORMAT.persistent:
      return { format: sp.nameIdFormat, value: user.id };
    case NAMEID_FORMAT.transient:
      return { format: sp.nameIdFormat, value: transientId };
    case NAMEID_FORMAT.emailAddress:
      return { format: sp.nameIdFormat, value: primaryEmail(user) };
    default:
      return { format: sp.nameIdFormat, value: user.userName };
  }
}

function primaryEmail(user: DirectoryPrincipal): string {
  return (user.emails.find((e) => e.primary) ?? user.emails[0])?.value ?? user.userName;
}

/** The SP's attribute map applied to the user: `{ samlName: userField }` → SAML attributes. */
export function mappedAttributes(
  sp: Pick<ServiceProvider, 'attributeMap'>,
  user: DirectoryPrincipal,
): SamlAttribute[] {
  const out: SamlAttribute[] = [];
  for (const [name, source] of Object.entries(sp.attributeMap)) {
    const values = valuesOf(source, user);
    if (values.length > 0) out.push({ name, values });
  }
  return out;
}

function valuesOf(source: string, user: DirectoryPrincipal): string[] {
  if (source.startsWith('attributes.')) {
    const v = user.attributes[source.slice('attributes.'.length)];
    return v ? [v] : [];
  }
  const one = (v: string | null | undefined) => (v ? [v] : []);
  switch (source) {
    case 'userName':
      return [user.userName];
    case 'email':
      return [primaryEmail(user)];
    case 'displayName':
      return one(user.displayName);
    case 'givenName':
      return one(user.givenName);
    case 'familyName':
      return one(user.familyName);
    case 'id':
      return [user.id];
    case 'externalId':
      return one(user.externalId);
    case 'groups':
      return user.groups.map((g) => g.name);
    default:
      return [];
  }
}
