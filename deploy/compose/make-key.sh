#!/usr/bin/env bash
# Create the pseudonymisation key for the compose deployment, once.
# The key file is mode 0400 and owned by UID 10001 (the icapdlp user in the
# image): icapdlp refuses a key that group or others can read. Back it up
# like a password: losing it changes every pseudonym and UID from then on.
set -euo pipefail
cd "$(dirname "$0")"
install -d -m 0700 secrets
if [ -e secrets/icapdlp.key ]; then
  echo "secrets/icapdlp.key exists; not replacing a key (see deploy/README.md, key rotation)" >&2
  exit 1
fi
umask 077
# 32 random bytes as hex, the format `icapdlp genkey` writes
od -An -tx1 -N32 /dev/urandom | tr -d ' \n' > secrets/icapdlp.key
echo >> secrets/icapdlp.key
chmod 0400 secrets/icapdlp.key
if [ "$(id -u)" -eq 0 ]; then
  chown 10001:10001 secrets/icapdlp.key
else
  echo "run as root (or: sudo chown 10001:10001 $(pwd)/secrets/icapdlp.key) so the container user can read it" >&2
fi
echo "wrote $(pwd)/secrets/icapdlp.key"
