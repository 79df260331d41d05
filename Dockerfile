# airship's container image: the static binary that `make image` builds
# (CGO_ENABLED=0, -trimpath, version in the ldflags) on a base with nothing
# else in it. Nothing is compiled here and nothing but the base is pulled;
# BASE_IMAGE=scratch pulls nothing at all:
#
#   make image                                  # airship:dev on distroless
#   make image IMAGE=airship:test BASE_IMAGE=scratch
#
# The build context is bin/linux-<arch>/airship and the empty directory
# bin/image-data, nothing else (.dockerignore).
ARG BASE_IMAGE=gcr.io/distroless/static-debian12:nonroot
FROM ${BASE_IMAGE}

ARG BASE_IMAGE
# Set by BuildKit; make image passes it to the legacy builder.
ARG TARGETARCH
ARG VERSION=dev
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="airship" \
      org.opencontainers.image.description="The shop API of Airship Ltd: products and orders on PostgreSQL and Redis, or on an embedded store" \
      org.opencontainers.image.vendor="Airship Ltd" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"

COPY bin/linux-${TARGETARCH}/airship /usr/local/bin/airship
# The embedded store's directory, owned by the user airship runs as: a
# volume mounted there starts with this owner.
COPY --chown=65532:65532 bin/image-data /data

# airship reads ./config.yaml if there is one: mount it here.
WORKDIR /etc/airship
# Listens on :8000 unless AIRSHIP_ADDR (or a platform's $PORT) says otherwise.
ENV AIRSHIP_DATA_DIR=/data \
    AIRSHIP_LOG_FORMAT=json
USER 65532:65532
# 8000: the API; 9464: Prometheus metrics (AIRSHIP_METRICS_ADDR).
EXPOSE 8000 9464
VOLUME ["/data"]
# distroless and scratch have no curl: airship asks its own /readyz.
HEALTHCHECK --interval=10s --timeout=5s --start-period=40s --retries=3 \
    CMD ["/usr/local/bin/airship", "healthcheck"]
# SIGTERM starts the graceful shutdown; give it shutdown_timeout (15s) plus
# a margin: docker stop -t 20, or docker run --stop-timeout 20.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/airship"]
CMD ["serve"]
