# syntax=docker/dockerfile:1
# The `cli` image: `docker build -f docker/cli.Dockerfile -t hadron-cli .` from the repository root.
# Multi-stage: build everything with dev dependencies, then keep only the production dependencies of
# @hadron/cli and its workspace packages on a small Node 20 base, running as a non-root user.
# Not built in CI here (no Docker engine on the build machine); see docker/README.md.

FROM node:20-alpine AS build
WORKDIR /src
COPY package.json package-lock.json tsconfig.base.json ./
COPY packages ./packages
COPY benchmarks ./benchmarks
RUN npm ci --no-audit --no-fund --ignore-scripts \
 && npx tsc -b packages/*/tsconfig.json \
 && npm prune --omit=dev --workspace @hadron/cli --include-workspace-root=false \
 && find packages -name '*.test.*' -delete \
 && find packages -path '*/src/*' -delete

FROM node:20-alpine
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/packages ./packages
# `/bin/hadron` is the command of the image.
RUN ln -s /app/packages/cli/bin/hadron.js /bin/hadron && chmod +x /app/packages/cli/bin/hadron.js
USER 65532:65532
ENTRYPOINT ["/bin/hadron"]
