# syntax=docker/dockerfile:1
#
# Trainer Chat: build the TypeScript, run the compiled JS as a non-root user.
#   docker build -t trainer-chat .
#   docker run -p 3000:3000 -e JWT_SECRET=$(openssl rand -hex 32) -v trainer-chat-data:/app/data trainer-chat
# Debian (glibc), not Alpine: the native modules (uWebSockets.js, @node-rs/argon2) ship glibc binaries.

FROM node:20-bookworm-slim AS base
WORKDIR /app

# All dependencies, dev ones included: the compiler lives there.
FROM base AS deps
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund

# tsc -p tsconfig.build.json: src/ (server and seed script) -> dist/src/*.js
FROM deps AS build
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# Runtime: production dependencies and the compiled JS only.
FROM base AS runtime
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
# DATA_DIR holds the embedded database (PGlite) when no Postgres is configured: the only place the
# app writes, so the only place the node user owns. Mount a volume there to keep it.
RUN mkdir -p /app/data /app/attachments && chown node:node /app/data /app/attachments
ENV DATA_DIR=/app/data \
    HOST=0.0.0.0 \
    PORT=3000
USER node
EXPOSE 3000
# Liveness (no curl in the slim image: Node's own fetch). Compose checks /ready instead.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/health', { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# No development accounts here: their passwords are published, and `seed.js` refuses with
# NODE_ENV=production. The first admin comes from ADMIN_EMAIL/ADMIN_PASSWORD (-e at docker run).
# A larger young generation: fewer scavenges at thousands of messages per second.
CMD ["node", "--max-semi-space-size=16", "--heap-growing-percent=50", "dist/src/main.js"]
