# syntax=docker/dockerfile:1
# airship: one static binary on a distroless base.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/airshipltd/airship/app.Version=${VERSION} -X github.com/airshipltd/airship/app.Commit=${COMMIT}" \
      -o /out/airship . \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/airship /usr/local/bin/airship
COPY --from=build --chown=nonroot:nonroot /out/data /data
WORKDIR /data
ENV AIRSHIP_ADDR=:8000 \
    AIRSHIP_DATA_DIR=/data \
    AIRSHIP_LOG_FORMAT=json
# 8000: the API; 9464: Prometheus metrics (AIRSHIP_METRICS_ADDR).
EXPOSE 8000 9464
VOLUME ["/data"]
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/airship"]
CMD ["serve"]
