# norn itself (api and workers share this image; the command picks the role). Apps that norn
# deploys bring their own Dockerfiles.
FROM node:20-bookworm-slim

# git clones app sources (ca-certificates for https remotes, openssh-client for ssh ones);
# postgresql-client provides pg_dump/psql for database snapshots and migrations.
RUN apt-get update \
 && apt-get install -y --no-install-recommends git ca-certificates openssh-client postgresql-client \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# Dependencies first, so that a source change does not reinstall them. norn runs its TypeScript
# with tsx, so there is no build step.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund && npm cache clean --force

COPY tsconfig.json ./
COPY src ./src

# npm would otherwise look for its own updates on every start.
ENV NPM_CONFIG_UPDATE_NOTIFIER=false
# HOST stays at its loopback default here: listening on 0.0.0.0 requires NORN_API_TOKEN, which
# the deployment (docker-compose.yml) provides.
EXPOSE 8080
CMD ["npm", "run", "api"]
