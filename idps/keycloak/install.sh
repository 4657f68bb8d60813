#!/usr/bin/env bash
# Installs Keycloak (the pinned keycloak-quarkus-dist, checksum verified) under target/keycloak/,
# once: Maven fetches it from Maven Central, into a local repository of its own there.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source=versions.sh
source "$here/versions.sh"
home="$root/target/keycloak/keycloak-$KEYCLOAK_VERSION"
marker="$home/.installed-sha256"
if [ -f "$marker" ] && [ "$(cat "$marker")" = "$KEYCLOAK_SHA256" ]; then
  exit 0
fi
for tool in java mvn tar sha256sum; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "Keycloak needs $tool (a Java 17+ JDK, Maven, tar, coreutils); install it, then run this again" >&2
    exit 2
  fi
done
work="$root/target/keycloak/download"
rm -rf "$work" "$home"
mkdir -p "$work"
echo "installing Keycloak $KEYCLOAK_VERSION from Maven Central (about 165 MB) ..." >&2
mvn --batch-mode --quiet -Dstyle.color=never \
  "-Dmaven.repo.local=$work/m2" \
  "org.apache.maven.plugins:maven-dependency-plugin:$MAVEN_DEPENDENCY_PLUGIN_VERSION:copy" \
  "-Dartifact=org.keycloak:keycloak-quarkus-dist:$KEYCLOAK_VERSION:tar.gz" \
  "-DoutputDirectory=$work" 2>&1 | sed 's/\x1b\[[0-9;]*m//g' >&2
archive="$work/keycloak-quarkus-dist-$KEYCLOAK_VERSION.tar.gz"
actual="$(sha256sum "$archive" | cut -d' ' -f1)"
if [ "$actual" != "$KEYCLOAK_SHA256" ]; then
  echo "the Keycloak archive's SHA-256 is $actual, not the pinned $KEYCLOAK_SHA256: refusing to install it" >&2
  exit 1
fi
tar -xzf "$archive" -C "$root/target/keycloak"
# The archive and Maven's copy of it are not needed once unpacked.
rm -rf "$work"
echo "$KEYCLOAK_SHA256" >"$marker"
echo "installed Keycloak $KEYCLOAK_VERSION in $home" >&2
