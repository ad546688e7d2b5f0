#!/usr/bin/env bash
# Build the_flip's container image on a machine with no Docker Hub access
# (CI and developer machines here). See docs/deploy.md and the shared
# docker notes. Idempotent: each step is skipped when already done.
#
#   docker/build-local.sh [TAG]        (default TAG: the-flip:test)
#
# 1. installs docker.io and debootstrap with apt when missing (root only);
# 2. starts dockerd in the background when no engine answers;
# 3. creates the base image debian:bookworm-slim from Debian's packages with
#    debootstrap when it is missing (Docker Hub cannot be reached);
# 4. builds docker/Dockerfile with BuildKit, passing this machine's CA bundle
#    as a build secret (never stored in a layer).
#
# Env: DOCKER (default /usr/bin/docker, the Debian client: another `docker`
# earlier on PATH may want the buildx plugin), BASE_IMAGE (default
# debian:bookworm-slim), DEBIAN_MIRROR, DOCKERD_LOG (default /tmp/dockerd.log).
set -euo pipefail

TAG="${1:-the-flip:test}"
DOCKER="${DOCKER:-/usr/bin/docker}"
BASE_IMAGE="${BASE_IMAGE:-debian:bookworm-slim}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
DOCKERD_LOG="${DOCKERD_LOG:-/tmp/dockerd.log}"
CA_BUNDLE="${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

log() { printf '[build-local] %s\n' "$*" >&2; }

# 1. tools
missing=()
[ -x "$DOCKER" ] || missing+=(docker.io)
command -v dockerd >/dev/null 2>&1 || [ -x /usr/sbin/dockerd ] || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || missing+=(debootstrap)
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        log "missing ${missing[*]}; run as root or: sudo apt-get install -y docker.io debootstrap"
        exit 1
    fi
    log "installing docker.io debootstrap with apt"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io debootstrap >/dev/null
fi
export PATH="$PATH:/usr/sbin:/sbin"

# 2. engine
if ! "$DOCKER" info >/dev/null 2>&1; then
    if [ "$(id -u)" != 0 ]; then
        log "no Docker engine answers and not root: start dockerd first"
        exit 1
    fi
    log "starting dockerd (log: $DOCKERD_LOG)"
    # setsid: dockerd outlives this script and is not tied to its terminal.
    setsid dockerd >"$DOCKERD_LOG" 2>&1 < /dev/null &
    for _ in $(seq 60); do
        "$DOCKER" info >/dev/null 2>&1 && break
        sleep 1
    done
    if ! "$DOCKER" info >/dev/null 2>&1; then
        log "dockerd did not come up; last lines of $DOCKERD_LOG:"
        tail -20 "$DOCKERD_LOG" >&2 || true
        exit 1
    fi
fi

# 3. base image
if ! "$DOCKER" image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    if "$DOCKER" pull "$BASE_IMAGE" >/dev/null 2>&1; then
        log "pulled $BASE_IMAGE"
    else
        log "creating $BASE_IMAGE with debootstrap (about a minute)"
        rootfs="$(mktemp -d /tmp/the-flip-rootfs.XXXXXX)"
        trap 'rm -rf "$rootfs"' EXIT
        debootstrap --variant=minbase bookworm "$rootfs" "$DEBIAN_MIRROR" >/dev/null
        # Like the official slim image: no apt lists or caches, no docs, man
        # pages or translations, now or in packages installed later.
        cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
CFG
        cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'CFG'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CFG
        echo 'Acquire::Languages "none";' >"$rootfs/etc/apt/apt.conf.d/docker-no-languages"
        find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
        rm -rf "$rootfs"/usr/share/{info,man,locale}/* "$rootfs"/usr/share/lintian/overrides/* \
            "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
            "$rootfs"/var/cache/apt/archives/*.deb
        tar -C "$rootfs" -c . | "$DOCKER" import \
            -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            -c 'CMD ["bash"]' - "$BASE_IMAGE" >/dev/null
        rm -rf "$rootfs"
        trap - EXIT
    fi
fi

# 4. the image
secret=()
[ -r "$CA_BUNDLE" ] && secret=(--secret "id=ca,src=$CA_BUNDLE")
log "building $TAG"
start=$(date +%s)
DOCKER_BUILDKIT=1 "$DOCKER" build --network host --progress plain \
    "${secret[@]}" --build-arg "BASE_IMAGE=$BASE_IMAGE" \
    -f "$ROOT/docker/Dockerfile" -t "$TAG" "$ROOT" >&2
size=$("$DOCKER" image inspect -f '{{.Size}}' "$TAG")
log "built $TAG in $(( $(date +%s) - start )) s, size $(( size / 1000000 )) MB"
