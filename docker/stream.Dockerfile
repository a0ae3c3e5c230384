# syntax=docker/dockerfile:1
# The `stream` image: `docker build -f docker/stream.Dockerfile -t hadron-stream .` from the repository root.
# Multi-stage: build everything with dev dependencies, then keep only the production dependencies of
# @hadron/stream and its workspace packages on a small Node 20 base, running as a non-root user.
# Not built in CI here (no Docker engine on the build machine); see docker/README.md.

FROM node:20-alpine AS build
WORKDIR /src
COPY package.json package-lock.json tsconfig.base.json ./
COPY packages ./packages
COPY benchmarks ./benchmarks
RUN npm ci --no-audit --no-fund --ignore-scripts \
 && npx tsc -b packages/*/tsconfig.json \
 && npm prune --omit=dev --workspace @hadron/stream --include-workspace-root=false \
 && find packages -name '*.test.*' -delete \
 && find packages -path '*/src/*' -delete

FROM node:20-alpine
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/packages ./packages
# The operator's StatefulSets run `command: ["/bin/hadron-stream"]` (reference §3.5).
RUN ln -s /app/packages/stream/bin/hadron-stream.js /bin/hadron-stream && chmod +x /app/packages/stream/bin/hadron-stream.js
USER 65532:65532
EXPOSE 7000 7001 7002
ENTRYPOINT ["/bin/hadron-stream"]
