#!/usr/bin/env bash
# npm run test:package: the npm package as a user gets it.
#   1. builds the prebuild (npm run prebuild) with libbpf-dev hidden, and dist/
#   2. npm pack; checks what the tarball holds (and what it must not)
#   3. installs it into an empty directory with PREBUILDS_ONLY=1 on a machine
#      state without clang, llvm, gcc/g++, cmake, make, bpftool or libbpf
#      headers (a private mount namespace with those covered; the registry is
#      reachable): the install must use the prebuild and compile nothing
#   4. tsc checks the README's API example against the installed package, as
#      ESM (import) and CommonJS (require), and node runs both inside the
#      server end of a throwaway veth pair of network namespaces (scpkg-*,
#      192.0.2.0/24 only inside them): attach, one connect, ackAccepted >= 1
#   5. PREBUILDS_ONLY=1 without a prebuild fails with a clear message and
#      compiles nothing; without PREBUILDS_ONLY the toolchain builds it from
#      the shipped sources (the fallback), libbpf's source fetched with apt by
#      the installed package's scripts/fetch-libbpf-source.sh (also checked as
#      an unprivileged user), and again offline with SYNCOOKIE_AGENT_LIBBPF_TARBALL
#      and apt hidden
# Needs root (unshare, ip netns). Namespaces and temp files go even on failure.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

tmp="$(mktemp -d /tmp/scpkg.XXXXXX)"
nobody="$(mktemp -d /tmp/scpkg-nobody.XXXXXX)"   # uid 65534's, for fetch-libbpf-source.sh
SRV="scpkg-srv-$$"
CLI="scpkg-cli-$$"
cleanup() {
  ip netns del "$SRV" 2>/dev/null || true
  ip netns del "$CLI" 2>/dev/null || true
  rm -rf "$tmp" "$nobody"
}
trap cleanup EXIT
steps=0
step() { steps=$((steps + 1)); printf '\n== test-package: %s\n' "$*"; }
fail() { printf 'test-package: FAIL: %s\n' "$*" >&2; exit 1; }
elapsed() { echo "$(( $(date +%s%N) / 1000000 - $1 )) ms"; }
now() { echo $(( $(date +%s%N) / 1000000 )); }

# Covers what must not be needed: each path that exists gets an empty tmpfs
# (directories) or a stub (files) that records the call and fails.
cat > "$tmp/stub" <<EOF
#!/bin/sh
echo "\$0 \$*" >> "$tmp/compiler-calls"
echo "test-package: \$0 is hidden here" >&2
exit 127
EOF
chmod +x "$tmp/stub"
: > "$tmp/compiler-calls"
hide_dev_libbpf='
  for d in /usr/include/bpf; do [ -d "$d" ] && mount -t tmpfs -o size=1m,mode=755 tmpfs "$d"; done
  for f in /usr/lib/x86_64-linux-gnu/libbpf.a /usr/lib/x86_64-linux-gnu/libbpf.so /usr/lib/x86_64-linux-gnu/pkgconfig/libbpf.pc; do
    [ -e "$f" ] && mount --bind /dev/null "$f"
  done; true'
hide_toolchain="$hide_dev_libbpf"'
  for d in /usr/lib/llvm-19 /usr/lib/llvm-14 /usr/lib/gcc /usr/libexec/gcc /usr/share/cmake-3.25; do
    [ -d "$d" ] && mount -t tmpfs -o size=1m,mode=755 tmpfs "$d"
  done
  for t in cc c++ gcc g++ cpp clang clang++ clang-19 clang-14 cmake make gmake ninja ld as bpftool llvm-strip-19; do
    for p in /usr/bin/$t /usr/sbin/$t /usr/local/bin/$t; do
      [ -e "$p" ] && mount --bind "'"$tmp/stub"'" "$(readlink -f "$p")"
    done
  done; true'
sandbox() { unshare --mount --propagation private bash -c "$hide_toolchain"'
  [ ! -e /usr/include/bpf/libbpf.h ] && [ ! -e /usr/lib/llvm-19/bin/clang ] && [ -z "$(ls -A /usr/lib/gcc)" ] \
    || { echo "test-package: the toolchain is still visible" >&2; exit 1; }
  exec "$@"' sandbox "$@"; }

step "prebuild (libbpf-dev hidden) and dist/"
t=$(now)
unshare --mount --propagation private bash -c "$hide_dev_libbpf"'
  exec npm run prebuild --silent' > "$tmp/prebuild.log" 2>&1 || { cat "$tmp/prebuild.log"; fail "npm run prebuild"; }
npm run build:ts --silent > /dev/null
echo "built in $(elapsed "$t"): $(ls prebuilds/linux-x64/)"
node=(prebuilds/linux-x64/*.node)
[ "${#node[@]}" = 1 ] || fail "expected one prebuild in prebuilds/linux-x64, got ${node[*]}"
ldd "${node[0]}" | tee "$tmp/ldd"
unexpected="$(grep -vE '^\s*(linux-vdso\.so|/lib64/ld-linux-x86-64\.so|lib(c|m|elf|z)\.so)' "$tmp/ldd" || true)"
[ -z "$unexpected" ] || fail "the prebuild needs more than libc, libm, libelf and libz: $unexpected"
grep -q 'syncookie_ingress' "${node[0]}" || fail "the prebuild does not embed the BPF object"

step "npm pack"
npm pack --json --pack-destination "$tmp" > "$tmp/pack.json"
tarball="$tmp/$(node -p "require('$tmp/pack.json')[0].filename")"
node -e "
  const p = require('$tmp/pack.json')[0]
  const kB = (n) => (n / 1000).toFixed(1) + ' kB'
  console.log(\`\${p.filename}: \${p.entryCount} files, \${kB(p.size)} packed, \${kB(p.unpackedSize)} unpacked\`)"
tar tzf "$tarball" | sed 's|^package/||' | sort > "$tmp/files"
for need in package.json README.md THIRD-PARTY-NOTICES.md CMakeLists.txt cmake/libbpf.cmake cmake/node-addon.map \
    bpf/syncookie.bpf.c bpf/syncookie.h binding/addon.cc scripts/install.mjs scripts/prebuild-with-cmake-js.sh scripts/fetch-libbpf-source.sh \
    dist/index.js dist/index.mjs dist/index.d.ts dist/index.d.mts dist/agent.d.ts dist/errors.d.ts "${node[0]}"; do
  grep -qxF "$need" "$tmp/files" || fail "the tarball lacks $need"
done
# No tests, build trees, TypeScript sources, maps, or libbpf's sources and headers.
if grep -E '^(test|bench|lib|build|node_modules|deps)/|\.map$|\.tgz$|\.tar\.gz$|(^|/)(libbpf\.[ch]|bpf_helpers\.h|btf\.c|vmlinux\.h|.*\.skel\.h)$' "$tmp/files" | grep -v '^cmake/node-addon\.map$'; then
  fail "the tarball holds files users do not need (above)"
fi

step "namespaces $SRV and $CLI"
ip netns add "$SRV"
ip netns add "$CLI"
ip link add "scpkg$$s" type veth peer name "scpkg$$c"
ip link set "scpkg$$s" netns "$SRV"
ip link set "scpkg$$c" netns "$CLI"
ip -n "$SRV" link set "scpkg$$s" name eth0   # the README's interface name
ip -n "$SRV" addr add 192.0.2.1/24 dev eth0
ip -n "$CLI" addr add 192.0.2.2/24 dev "scpkg$$c"
for ns in "$SRV" "$CLI"; do
  ip -n "$ns" link set lo up
  ip -n "$ns" link set "$( [ "$ns" = "$SRV" ] && echo eth0 || echo "scpkg$$c")" up
done

step "install with PREBUILDS_ONLY=1 and no toolchain"
mkdir "$tmp/app"
echo '{ "name": "scpkg-app", "private": true }' > "$tmp/app/package.json"
t=$(now)
sandbox sh -c "cd '$tmp/app' && PREBUILDS_ONLY=1 npm install --foreground-scripts --no-audit --no-fund '$tarball'" \
  > "$tmp/install.log" 2>&1 || { cat "$tmp/install.log"; fail "npm install"; }
echo "installed in $(elapsed "$t")"
pkg="$tmp/app/node_modules/syncookie-agent"
grep 'syncookie-agent: ' "$tmp/install.log"
grep -q 'syncookie-agent: using prebuilds/linux-x64/' "$tmp/install.log" || fail "the install did not use the prebuild"
[ ! -s "$tmp/compiler-calls" ] || { cat "$tmp/compiler-calls"; fail "the install tried to run the hidden tools above"; }
[ ! -e "$pkg/build" ] || fail "the install made $pkg/build"

step "tsc: the README example against the installed types (import and require)"
node "$root/scripts/readme-example.mjs" "$pkg/README.md" "$tmp/app"
cat > "$tmp/app/tsconfig.json" <<EOF
{
  "compilerOptions": {
    "target": "ES2022", "module": "node16", "moduleResolution": "node16", "strict": true,
    "typeRoots": ["$root/node_modules/@types"], "types": ["node"], "outDir": "out"
  },
  "files": ["example.mts", "example.cts"]
}
EOF
sandbox node "$root/node_modules/typescript/bin/tsc" -p "$tmp/app/tsconfig.json" || fail "tsc rejected the README example"
ls "$tmp/app/out"

step "the README example, run inside $SRV"
for style in mjs cjs; do
  sandbox env SCPKG_STYLE="$style" SCPKG_CLIENT_NETNS="$CLI" PREBUILDS_ONLY=1 \
    nsenter --net="/run/netns/$SRV" node "$tmp/app/out/example.$style" || fail "the $style example"
done
[ ! -s "$tmp/compiler-calls" ] || { cat "$tmp/compiler-calls"; fail "running tried the hidden tools above"; }

step "PREBUILDS_ONLY=1 without a prebuild"
mkdir "$tmp/src" "$tmp/app2" "$tmp/app3" "$tmp/app4"
tar xzf "$tarball" -C "$tmp/src"
rm -rf "$tmp/src/package/prebuilds"
tar czf "$tmp/noprebuild.tgz" -C "$tmp/src" package
for d in app2 app3 app4; do echo '{ "name": "scpkg-app", "private": true }' > "$tmp/$d/package.json"; done
if sandbox sh -c "cd '$tmp/app2' && PREBUILDS_ONLY=1 npm install --foreground-scripts --no-audit --no-fund '$tmp/noprebuild.tgz'" \
  > "$tmp/install2.log" 2>&1; then
  cat "$tmp/install2.log"; fail "the install succeeded without a prebuild"
fi
grep 'syncookie-agent: PREBUILDS_ONLY is set and no prebuilt addon loads here' "$tmp/install2.log" \
  || { cat "$tmp/install2.log"; fail "no clear PREBUILDS_ONLY message"; }
[ ! -s "$tmp/compiler-calls" ] || { cat "$tmp/compiler-calls"; fail "the PREBUILDS_ONLY install tried to compile"; }

orig=libbpf_1.1.2.orig.tar.gz
sha256=b50ab60637fb713db78aa98e6ca911ddf13c0799d498a1f6ec03ebffc7dca588
loads_build() {
  (cd "$1" && node -e "
    const p = require('node-gyp-build').resolve('node_modules/syncookie-agent')
    if (!p.endsWith('build/Release/syncookie.node')) throw new Error('loads ' + p)
    require('syncookie-agent'); console.log('loads', require('node:path').relative(process.cwd(), p))")
}

step "fallback: build from the shipped sources (toolchain present, libbpf-dev hidden, libbpf's source through apt)"
t=$(now)
unshare --mount --propagation private bash -c "$hide_dev_libbpf"'
  cd "$1" && exec env -u SYNCOOKIE_AGENT_LIBBPF_TARBALL npm install --foreground-scripts --no-audit --no-fund "$2"' \
  sandbox "$tmp/app3" "$tmp/noprebuild.tgz" > "$tmp/install3.log" 2>&1 || { tail -40 "$tmp/install3.log"; fail "the from-source install"; }
echo "built from source and installed in $(elapsed "$t")"
grep -E 'syncookie-agent: |fetch-libbpf-source: ' "$tmp/install3.log"
pkg3="$tmp/app3/node_modules/syncookie-agent"
grep -qxF "fetch-libbpf-source: $pkg3/build/deps/$orig (SHA-256 $sha256)" "$tmp/install3.log" \
  || fail "the fallback did not fetch $orig with the package's scripts/fetch-libbpf-source.sh"
[ -f "$pkg3/build/Release/syncookie.node" ] || fail "no $pkg3/build/Release/syncookie.node"
loads_build "$tmp/app3"

step "the installed scripts/fetch-libbpf-source.sh as an unprivileged user"
chown 65534:65534 "$nobody"
chmod 711 "$tmp"   # uid 65534 runs the script where npm installed it
t=$(now)
setpriv --reuid=65534 --regid=65534 --clear-groups env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$nobody" TMPDIR="$nobody" \
  sh "$pkg3/scripts/fetch-libbpf-source.sh" "$nobody/deps" > "$nobody/fetch.log" 2>&1 \
  || { cat "$nobody/fetch.log"; fail "fetch-libbpf-source.sh as uid 65534"; }
chmod 700 "$tmp"
echo "fetched in $(elapsed "$t")"
rm "$nobody/fetch.log"
[ "$(sha256sum < "$nobody/deps/$orig" | cut -d' ' -f1)" = "$sha256" ] || fail "uid 65534 fetched a different $orig"
[ "$(stat -c %u "$nobody/deps/$orig")" = 65534 ] || fail "$nobody/deps/$orig is not uid 65534's"
[ "$(ls -A "$nobody")" = deps ] || { ls -la "$nobody"; fail "fetch-libbpf-source.sh left files behind"; }

step "fallback offline: SYNCOOKIE_AGENT_LIBBPF_TARBALL, apt hidden"
# libbpf's tarball as the prebuild fetched it: the offline way of README's "Installing from npm".
offline="$root/build/deps/$orig"
[ -f "$offline" ] || fail "no $offline after the prebuild"
: > "$tmp/compiler-calls"
t=$(now)
unshare --mount --propagation private bash -c "$hide_dev_libbpf"'
  for p in /usr/bin/apt-get /usr/bin/apt-config; do mount --bind "$3" "$p"; done
  cd "$1" && SYNCOOKIE_AGENT_LIBBPF_TARBALL="$4" exec npm install --foreground-scripts --no-audit --no-fund "$2"' \
  sandbox "$tmp/app4" "$tmp/noprebuild.tgz" "$tmp/stub" "$offline" > "$tmp/install4.log" 2>&1 \
  || { tail -40 "$tmp/install4.log"; fail "the offline from-source install"; }
echo "built from source and installed in $(elapsed "$t")"
grep 'syncookie-agent: ' "$tmp/install4.log"
grep -qF -- "-- libbpf 1.1.2 from $offline" "$tmp/install4.log" || fail "the fallback did not use SYNCOOKIE_AGENT_LIBBPF_TARBALL"
[ ! -s "$tmp/compiler-calls" ] || { cat "$tmp/compiler-calls"; fail "the offline install ran apt"; }
loads_build "$tmp/app4"

printf '\ntest-package: %d passed, 0 failed\n' "$steps"
