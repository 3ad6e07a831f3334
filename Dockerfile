# syntax=docker/dockerfile:1
# Build stage: compile TypeScript with the dev toolchain.
FROM node:20-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# Runtime stage: production dependencies and compiled code only, run as an unprivileged user.
FROM node:20-slim AS runtime
ENV NODE_ENV=production
WORKDIR /opt/tollgate
COPY package.json package-lock.json ./
# No install scripts are needed at run time (they only serve the demo and the build).
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /src/dist ./dist
COPY config ./config
RUN groupadd --system tollgate && useradd --system --gid tollgate --home-dir /nonexistent tollgate \
  && mkdir -p /var/lib/tollgate/audit /etc/tollgate \
  && chown -R tollgate:tollgate /var/lib/tollgate
USER tollgate
# The audit log is evidence: keep it on a volume that outlives the container.
VOLUME ["/var/lib/tollgate/audit"]
EXPOSE 8080 6432 9090
ENTRYPOINT ["node", "/opt/tollgate/dist/cli/main.js"]
CMD ["serve", "--config", "/etc/tollgate/tollgate.yaml"]
