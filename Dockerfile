# The controller image: `docker build -t ghcr.io/trafficctl/trafficctl:TAG .`
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /trafficctl ./cmd/trafficctl

FROM gcr.io/distroless/static:nonroot
COPY --from=build /trafficctl /trafficctl
USER 65532:65532
ENTRYPOINT ["/trafficctl"]
