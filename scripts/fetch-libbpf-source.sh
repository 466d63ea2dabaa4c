#!/bin/sh
# Fetches libbpf_1.1.2.orig.tar.gz, the source tarball cmake/libbpf.cmake
# builds libbpf from, out of Debian's source package libbpf 1.1.2-0+deb12u1
# (the binary packages libbpf1 and libbpf-dev add the epoch: 1:1.1.2-0+deb12u1),
# with apt by package name (`apt-get source --download-only`), and puts it in
# DEST_DIR once its SHA-256 is the pinned one. apt checks it against the signed
# Sources index on the way. Debian carries no patches in that version, so the
# tarball is upstream's v1.1.2 as it is.
#
#   scripts/fetch-libbpf-source.sh DEST_DIR
#
# apt is asked through this machine's own configuration (apt.conf.d, proxies,
# keyrings) and its own sources: a `Types: deb-src` twin of every configured
# entry is written into a private temporary directory, with private lists,
# cache and no locking, so the system's apt state is left as it was and root
# is not needed. So this works where apt has Debian 12 (bookworm) sources,
# which hold that version; elsewhere SYNCOOKIE_AGENT_LIBBPF_TARBALL (README,
# "Installing from npm") names a copy of the tarball instead.
set -eu

VERSION='1.1.2-0+deb12u1'   # a source version: no epoch
ORIG='libbpf_1.1.2.orig.tar.gz'
SHA256='b50ab60637fb713db78aa98e6ca911ddf13c0799d498a1f6ec03ebffc7dca588'

say() { echo "fetch-libbpf-source: $*" >&2; }
offline="set SYNCOOKIE_AGENT_LIBBPF_TARBALL to a copy of $ORIG (SHA-256 $SHA256) instead"

[ $# -eq 1 ] || { echo "usage: $0 DEST_DIR" >&2; exit 2; }
for tool in apt-get apt-config sha256sum; do
  command -v "$tool" > /dev/null 2>&1 || { say "needs $tool (apt: Debian, Ubuntu); $offline"; exit 1; }
done
mkdir -p "$1"
dest="$(cd "$1" && pwd)"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/libbpf-source.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM HUP
mkdir -p "$tmp/parts" "$tmp/lists/partial" "$tmp/cache/archives/partial" "$tmp/src"

# The configuration apt itself uses (APT_CONFIG included, if set).
SL='' SP='' MAIN=''
cfg="$(apt-config shell SL Dir::Etc::sourcelist/f SP Dir::Etc::sourceparts/d MAIN Dir::Etc::main/f)" \
  || { say "apt-config failed; $offline"; exit 1; }
eval "$cfg"

# One-line entries (sources.list, *.list): each `deb` line again as `deb-src`.
for f in "$SL" "$SP"*.list; do
  [ -f "$f" ] || continue
  sed -n -E 's/^[[:space:]]*deb(-src)?([[:space:]])/deb-src\2/p' "$f"
done | awk '!seen[$0]++' > "$tmp/sources.list"
# deb822 entries (*.sources): each enabled stanza with its Types set to deb-src,
# every other field (URIs, Suites, Components, Signed-By, ...) as it is.
for f in "$SP"*.sources; do
  [ -f "$f" ] || continue
  cat "$f"; echo
done | awk '
  function flush() {
    if (text != "" && types && !disabled && !seen[text]++) printf "Types: deb-src\n%s\n", text
    text = ""; types = 0; disabled = 0
  }
  /^[[:space:]]*$/ { flush(); next }
  /^#/ { next }
  tolower($0) ~ /^types:/ { types = tolower(substr($0, 7)) ~ /(^|[[:space:]])deb(-src)?([[:space:]]|$)/; next }
  tolower($0) ~ /^enabled:/ { disabled = tolower(substr($0, 9)) ~ /^[[:space:]]*no[[:space:]]*$/ }
  { text = text $0 "\n" }
  END { flush() }' > "$tmp/parts/deb-src.sources"
if [ ! -s "$tmp/sources.list" ] && [ ! -s "$tmp/parts/deb-src.sources" ]; then
  say "apt has no sources configured ($SL, $SP); $offline"
  exit 1
fi

# APT_CONFIG is read before apt.conf.d, the main file after it: the main file
# here takes the system's and then drops apt.conf.d's update hooks, which are
# about the system's lists, not these.
{
  [ -n "${APT_CONFIG:-}" ] && [ -f "$APT_CONFIG" ] && printf '#include "%s";\n' "$APT_CONFIG"
  printf 'Dir::Etc::main "%s";\n' "$tmp/main.conf"
} > "$tmp/apt.conf"
{
  [ -f "$MAIN" ] && printf '#include "%s";\n' "$MAIN"
  printf '#clear APT::Update::Pre-Invoke;\n#clear APT::Update::Post-Invoke;\n#clear APT::Update::Post-Invoke-Success;\n'
} > "$tmp/main.conf"

# As root, apt runs its download methods as APT::Sandbox::User (_apt), which
# must be able to write where they write.
if [ "$(id -u)" = 0 ]; then
  SANDBOX=''
  cfg="$(apt-config shell SANDBOX APT::Sandbox::User)" || { say "apt-config failed; $offline"; exit 1; }
  eval "$cfg"
  if [ -n "$SANDBOX" ] && id "$SANDBOX" > /dev/null 2>&1; then
    chmod 755 "$tmp"
    chown -R "$SANDBOX" "$tmp/lists" "$tmp/cache" "$tmp/src"
  fi
fi

apt() {
  APT_CONFIG="$tmp/apt.conf" apt-get -q \
    -o Dir::Etc::sourcelist="$tmp/sources.list" -o Dir::Etc::sourceparts="$tmp/parts" \
    -o Dir::State::lists="$tmp/lists" -o Dir::Cache="$tmp/cache" \
    -o Debug::NoLocking=true "$@"
}

say "apt-get update (deb-src of this machine's apt sources, in $tmp)"
update=0
apt update > "$tmp/update.log" 2>&1 || update=$?
grep -E '^(E|W):' "$tmp/update.log" >&2 || true
say "apt-get source --download-only libbpf=$VERSION"
if ! (cd "$tmp/src" && apt source --download-only --only-source "libbpf=$VERSION") > "$tmp/source.log" 2>&1; then
  cat "$tmp/update.log" "$tmp/source.log" >&2
  [ "$update" = 0 ] || say "apt-get update failed (exit $update)"
  say "could not fetch the source package libbpf=$VERSION with apt (its sources need Debian 12, bookworm); $offline"
  exit 1
fi
grep -E '^(Get|Fetched|E|W):' "$tmp/source.log" >&2 || true

[ -f "$tmp/src/$ORIG" ] || { cat "$tmp/source.log" >&2; say "apt fetched no $ORIG"; exit 1; }
got="$(sha256sum "$tmp/src/$ORIG" | cut -d' ' -f1)"
[ "$got" = "$SHA256" ] || { say "$ORIG has SHA-256 $got, not $SHA256"; exit 1; }
cp "$tmp/src/$ORIG" "$dest/.$ORIG.$$"
mv -f "$dest/.$ORIG.$$" "$dest/$ORIG"
say "$dest/$ORIG (SHA-256 $SHA256)"
