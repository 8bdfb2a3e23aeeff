# onair: ingest + origin in one container (`onair start`).
# Build: docker build -t onair .    Run: docker run -p 8080:8080 -p 9000:9000/udp -v $PWD/channels.yaml:/etc/onair/channels.yaml onair
# The admin listener (/metrics, /api, /listeners.json, /ingest/access-log) stays on the
# container's loopback unless asked for: to scrape it from the host only, add
#   -e ONAIR_ADMIN_HOST=0.0.0.0 -p 127.0.0.1:8081:8081
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json* ./
RUN npm install --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY bench ./bench
# The build (tsconfig.build.json) compiles bench/, which imports test helpers, and test/types.
COPY test/helpers ./test/helpers
COPY test/types ./test/types
RUN npx tsc -p tsconfig.build.json && npm prune --omit=dev

FROM node:20-bookworm-slim
# Debian's ffmpeg: decodes the feeds (SRT included) and encodes the AAC renditions.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg tini \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production \
    ONAIR_ORIGIN_HOST=0.0.0.0 \
    ONAIR_RECORDINGS_DIR=/var/lib/onair/recordings
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
# The player page's static files (served at /), read from the package root at run time.
COPY --from=build /app/src/origin/player ./src/origin/player
COPY package.json ./
RUN mkdir -p /var/lib/onair/recordings && chown node:node /var/lib/onair/recordings
VOLUME /var/lib/onair/recordings
USER node
# 8080: origin (playlists, segments, player page, /channels.json, /healthz: what listeners
# need); 9000/udp: SRT input. The admin port 8081 is not exposed: it binds 127.0.0.1 unless
# ONAIR_ADMIN_HOST says otherwise (see above).
EXPOSE 8080 9000/udp
# tini forwards SIGTERM and reaps children, so FFmpeg encoders stop with the container.
ENTRYPOINT ["/usr/bin/tini", "--", "node", "/app/dist/src/cli.js"]
CMD ["start", "--config", "/etc/onair/channels.yaml"]
