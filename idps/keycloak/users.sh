#!/usr/bin/env bash
# Prints a Keycloak partial realm import with N test users, user-loadtest-00001 ... (password
# loadtest), each with the profile fields Keycloak requires, so no "update profile" page appears.
set -euo pipefail
count="${1:?usage: users.sh N}"
printf '{"realm": "loadtest", "users": [\n'
for ((number = 1; number <= count; number++)); do
  name="$(printf 'user-loadtest-%05d' "$number")"
  separator=","
  [ "$number" -eq "$count" ] && separator=""
  printf '{"username": "%s", "enabled": true, "email": "%s@loadtest.invalid", "emailVerified": true, "firstName": "Load", "lastName": "Test %05d", "credentials": [{"type": "password", "value": "loadtest", "temporary": false}]}%s\n' \
    "$name" "$name" "$number" "$separator"
done
printf ']}\n'
