# Fleet PKI API image on Node 24 LTS. better-sqlite3 13 ships prebuilt N-API binaries; pkcs11js (the PKCS #11 binding,
# docs/pkcs11.md) is an N-API addon that npm ci compiles, so the build stage has a compiler (the final image does not).
FROM node:24-bookworm-slim AS build
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY scripts ./scripts
COPY src ./src
COPY migrations ./migrations
# The ops console (console/) is bundled by the build into dist/console; it calls the API through the generated client.
COPY clients ./clients
COPY console ./console
# The command line (docs/cli.md): `docker run … node bin/fleet-pki.js <command>` (it uses the generated client only).
COPY cli ./cli
COPY bin ./bin
# The image's own Node 24 runs the service; the pinned "node" devDependency (for machines whose system Node is
# older) is pruned with the other development packages.
RUN npm run build && npm prune --omit=dev

FROM node:24-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production DATA_DIR=/data PORT=8080
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/bin ./bin
COPY package.json ./
RUN mkdir -p /data && chown node:node /data
USER node
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:8080/healthz').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"
# Node flags: src/service-node-flags.ts (docs/runtime.md, "Memory").
CMD ["node", "--max-semi-space-size=16", "--no-allocation-site-pretenuring", "dist/src/main.js"]
