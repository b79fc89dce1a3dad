#!/bin/sh
# Runs Debian 12's Node.js 18 (bookworm's nodejs package) without installing it, to check the JS
# tests under the Node of a fresh Debian 12 on a machine whose `node` is newer:
#   test/node18.sh --test test/docs/guide.test.js
# First use: `apt-get download`s nodejs, libnode108 and the three packages whose files Debian's
# node loads at start-up (cjs-module-lexer, undici, acorn), unpacks them with `dpkg -x` into
# $UVWS_NODE18_DIR (default /tmp/node18) and points libnode at that copy; the other libraries
# (libuv1, libssl3, libicu72, ...) are the system's. `node` in PATH is this one for child processes
# too (wscat's `#!/usr/bin/env node`). Not needed where Debian's nodejs is installed.
set -eu
dir=${UVWS_NODE18_DIR:-/tmp/node18}
case $dir in /*) ;; *) echo "node18.sh: UVWS_NODE18_DIR must be absolute" >&2; exit 2 ;; esac

if [ ! -x "$dir/bin/node" ]; then
  # Debian's node reads its externalized builtins from /usr/share/nodejs/..., a path compiled into
  # libnode.so.108: replace it by "$dir/js/" of the same length (leading slashes pad it).
  js="$dir/js/"
  [ ${#js} -le 18 ] || { echo "node18.sh: UVWS_NODE18_DIR is too long (at most 14 characters)" >&2; exit 2; }
  pad=$(printf '%*s' $((18 - ${#js})) '' | tr ' ' /)
  ver=$(apt-cache madison nodejs | awk '$3 ~ /dfsg/ { print $3; exit }')
  [ -n "$ver" ] || { echo "node18.sh: no Debian nodejs in the apt lists (apt-get update?)" >&2; exit 1; }
  mkdir -p "$(dirname "$dir")"
  tmp=$(mktemp -d "$dir.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && apt-get download -q "nodejs=$ver" "libnode108=$ver" \
    node-cjs-module-lexer node-undici node-acorn >&2)
  mkdir -p "$tmp/root/bin"
  for deb in "$tmp"/*.deb; do dpkg-deb -x "$deb" "$tmp/root"; done
  lib=$(cd "$tmp/root" && dirname usr/lib/*/libnode.so.108)
  perl -pi -e "s{/usr/share/nodejs/}{$pad$js}g" "$tmp/root/$lib/libnode.so.108"
  ln -s usr/share/nodejs "$tmp/root/js"
  cat >"$tmp/root/bin/node" <<EOF
#!/bin/sh
export LD_LIBRARY_PATH="$dir/$lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
exec "$dir/usr/bin/node" "\$@"
EOF
  chmod +x "$tmp/root/bin/node"
  rm -rf "$dir"
  mv "$tmp/root" "$dir"
  rm -rf "$tmp"
  trap - EXIT
  "$dir/bin/node" --version >&2
fi

PATH="$dir/bin:$PATH" exec "$dir/bin/node" "$@"
