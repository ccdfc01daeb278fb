/** The commented starter config that `ferry init` writes. */
export const STARTER_CONFIG = `# Ferry configuration. Every key is optional; the values shown are the defaults.
# Environment variables override the file: FERRY_LISTEN, FERRY_PUBLIC_URL, FERRY_DATABASE_URL,
# FERRY_MASTER_KEY, FERRY_MASTER_KEY_FILE, FERRY_LOG_LEVEL, FERRY_REQUIRE_MFA.

# Where Ferry listens (host:port), and the URL people and AWS reach it at.
listen: 127.0.0.1:7070
publicUrl: http://127.0.0.1:7070

database:
  # sqlite:PATH (embedded, the default) or postgres://user@host:5432/ferry (several instances).
  # A relative path is relative to this file.
  url: sqlite:./data/ferry.db
  poolSize: 10

keys:
  # 32 random bytes (base64) that seal secrets at rest (TOTP secrets, later signing keys).
  # Keep it out of this file: a file readable by Ferry only, or FERRY_MASTER_KEY.
  masterKeyFile: ./data/master.key

sessions:
  idleTimeout: 30m       # a session nobody used for this long ends
  absoluteTimeout: 12h   # every session ends this long after sign-in
  cookieName: ferry_session

signin:
  requireMfa: true       # users without an authenticator enroll one at their next sign-in
  accountMaxFailures: 5  # failures per account within failureWindow before a lockout
  addressMaxFailures: 20 # failures per source address within failureWindow before a lockout
  failureWindow: 15m
  lockout: 15m

passwords:
  # argon2id cost; the defaults are OWASP's recommended minimum.
  memoryKiB: 19456
  iterations: 2
  parallelism: 1

http:
  bodyLimit: 1048576     # bytes
  trustProxy: false      # true, or the addresses of the reverse proxies in front of Ferry

log:
  level: info            # fatal, error, warn, info, debug, trace, silent
`;
