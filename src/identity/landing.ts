/** Where a sign-in without a return path lands: the web console's My access page (the portal). */
export const DEFAULT_LANDING = '/';
