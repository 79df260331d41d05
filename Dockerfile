# syntax=docker/dockerfile:1
# airship: one static binary on a distroless base.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# TAGS=remote builds the binary that can also run each module in its own
# process (serve --modules gateway|products|orders).
ARG TAGS=""
RUN CGO_ENABLED=0 go build -tags "${TAGS}" -trimpath \
      -ldflags "-s -w -X github.com/airshipltd/airship/app.Version=${VERSION}" \
      -o /out/airship . \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/airship /usr/local/bin/airship
COPY --from=build --chown=nonroot:nonroot /out/data /data
WORKDIR /data
ENV AIRSHIP_ADDR=:8000 \
    AIRSHIP_DATA_DIR=/data \
    AIRSHIP_LOG_FORMAT=json
EXPOSE 8000
VOLUME ["/data"]
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/airship"]
CMD ["serve"]
