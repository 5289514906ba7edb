# syntax=docker/dockerfile:1
# The towerps image (deploy/k8s; deploy/README.md): `docker build -t towerps:0.1.0 .`
# Build stage: the project's own install script (Debian 12 packages) and a Release
# build of the towerps binary. Runtime stage: the binary, deploy/ and only the shared
# libraries it links (tests/integration/k8s_test.sh checks that the packages below
# exist and cover `ldd towerps`), run as the unprivileged user towerps (uid 10001, the
# runAsUser of deploy/k8s).
FROM debian:12 AS build
WORKDIR /src
COPY deploy/install_deps.sh deploy/install_deps.sh
RUN deploy/install_deps.sh && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DTOWERPS_BUILD_BENCH=OFF \
    && cmake --build build --target towerps \
    && build/cmd/towerps version

FROM debian:12-slim
ARG RUNTIME_PACKAGES="libzmq5 libcapnp-0.9.2 libgoogle-glog0v6 libgflags2.2 libabsl20220623 libopenblas0-pthread libgomp1 libstdc++6 libcpp-httplib0.11"
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $RUNTIME_PACKAGES \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 towerps \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin towerps
COPY --from=build /src/build/cmd/towerps /usr/local/bin/towerps
COPY --from=build /src/deploy /opt/towerps/deploy
USER 10001:10001
WORKDIR /tmp
CMD ["towerps", "--help"]
