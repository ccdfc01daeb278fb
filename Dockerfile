# Ferry server image. NOT BUILT OR TESTED on the machines Ferry is developed on (no container registry
# is reachable there for a base image); see docs/install.md. Build: docker build -t ferry .
ARG NODE_IMAGE=node:24-bookworm-slim

# 1. Build: compile TypeScript and better-sqlite3, then keep only the runtime dependencies.
FROM ${NODE_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm install --no-audit --no-fund --ignore-scripts && npm rebuild better-sqlite3
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY bin ./bin
RUN npm run build && npm prune --omit=dev --no-audit --no-fund \
 && find dist -name '*.map' -delete

# 2. Run: no compiler, no npm cache, a non-root user, nothing writable but the data volume and /tmp.
FROM ${NODE_IMAGE}
ENV NODE_ENV=production \
    FERRY_LISTEN=0.0.0.0:7070 \
    FERRY_CONFIG=/etc/ferry/ferry.yaml
WORKDIR /opt/ferry
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/bin ./bin
RUN ln -s /opt/ferry/bin/ferry.js /usr/local/bin/ferry \
 && install -d -o node -g node -m 0700 /var/lib/ferry
# The node image's unprivileged user (uid 1000). Run with --read-only and a tmpfs on /tmp.
USER node
VOLUME ["/var/lib/ferry"]
EXPOSE 7070
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:7070/healthz').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "/opt/ferry/bin/ferry.js"]
CMD ["serve"]
