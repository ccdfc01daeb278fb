#!/usr/bin/env bash
# Runs a built Ferry image without a container runtime (where `podman run` cannot start containers,
# e.g. in a sandbox that forbids setrlimit): its root filesystem, mounted read-only, under chroot as
# the image's user, with only the data directory and /tmp writable; then the image's own HEALTHCHECK.
#   deploy/container/smoke.sh [IMAGE]      (default localhost/ferry:latest; needs root and buildah)
set -euo pipefail
image=${1:-localhost/ferry:latest}
# The image's own port: its HEALTHCHECK asks 127.0.0.1:7070.
port=${PORT:-7070}
ctr=$(buildah from "$image")
root=$(mktemp -d "${TMPDIR:-/tmp}/ferry-smoke-root.XXXXXX")
data=$(mktemp -d "${TMPDIR:-/tmp}/ferry-smoke-data.XXXXXX")
cleanup() {
  [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  buildah umount "$ctr" >/dev/null 2>&1 || true
  buildah rm "$ctr" >/dev/null 2>&1 || true
  rmdir "$root" 2>/dev/null || true
  rm -rf "$data"
}
trap cleanup EXIT
rootfs=$(buildah mount "$ctr")
user=$(buildah inspect --type container --format '{{.Docker.Config.User}}' "$ctr")
health=$(buildah inspect --type container --format '{{range .Docker.Config.Healthcheck.Test}}{{.}}{{"\x00"}}{{end}}' "$ctr" | tr '\0' '\n' | sed -n '2,$p')
chown "$user" "$data" && chmod 0700 "$data"
# One private mount namespace: the read-only root, the data directory, a tmpfs /tmp, /proc and /dev.
inside() {
  unshare --mount --fork -- sh -c '
    set -e
    mount --bind "$1" "$2" && mount -o remount,bind,ro "$2"
    mount --bind "$3" "$2/var/lib/ferry"
    mount -t tmpfs -o mode=1777 tmpfs "$2/tmp"
    mount -t proc proc "$2/proc"
    mount --rbind /dev "$2/dev"
    shift 3
    exec "$@"' sh "$rootfs" "$root" "$data" \
    chroot --userspec="$user" "$root" env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/var/lib/ferry \
      NODE_ENV=production FERRY_LISTEN="127.0.0.1:$port" FERRY_PUBLIC_URL="http://127.0.0.1:$port" \
      FERRY_CONFIG=/var/lib/ferry/ferry.yaml "$@"
}
echo "smoke: touching the read-only root must fail"
if inside sh -c 'touch /opt/ferry/x' 2>/dev/null; then echo "smoke: the root is writable" >&2; exit 1; fi
echo "smoke: ferry init, then ferry serve as $user"
inside sh -c 'cd /var/lib/ferry && ferry init >/dev/null'
inside node /opt/ferry/bin/ferry.js serve > "$data.log" 2>&1 &
pid=$!
for _ in $(seq 1 120); do
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz" || true)
  [ "$code" = 200 ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$data.log" >&2; exit 1; }
  sleep 1
done
curl -fsS "http://127.0.0.1:$port/readyz"; echo
echo "smoke: the image's HEALTHCHECK: $health"
mapfile -t health_cmd <<<"$health"
if ! inside "${health_cmd[@]}"; then echo "smoke: the HEALTHCHECK failed" >&2; exit 1; fi
echo "smoke: healthy"
ls -ln "$data"
rm -f "$data.log"
