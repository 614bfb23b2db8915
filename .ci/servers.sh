#!/usr/bin/env bash
# CI: the SFTP servers the tests run against, installed when missing (Debian/Ubuntu).
# OpenSSH's sshd; ProFTPD with mod_sftp (proftpd-core + proftpd-mod-crypto, which holds mod_sftp.so).
# The asyncssh server is a Python dev dependency (pyproject.toml [dev]), not installed here.
set -euo pipefail

missing=()
if ! command -v sshd >/dev/null 2>&1 && [ ! -x /usr/sbin/sshd ]; then
  missing+=(openssh-server)
fi
if [ ! -x /usr/sbin/proftpd ] || [ ! -f /usr/lib/proftpd/mod_sftp.so ]; then
  missing+=(proftpd-core proftpd-mod-crypto)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "ci: installing ${missing[*]} (the SFTP tests need real servers)"
  export DEBIAN_FRONTEND=noninteractive
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  # policy-rc.d 101: the packages must not start their own daemons; the tests start theirs
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
