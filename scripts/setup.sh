#!/usr/bin/env bash
# Installs everything kiln needs on a fresh Debian 12 machine: system packages (apt-get) and the
# Python tools used by tests and model scripts, at pinned versions, in the project venv (.venv).
# Safe to run again: it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(build-essential cmake ninja-build pkg-config git
  protobuf-compiler libprotobuf-dev nlohmann-json3-dev libcli11-dev libssl-dev
  libgtest-dev libgmock-dev libopenblas-dev clang-14 libclang-rt-14-dev clang-format python3-venv)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[setup] apt-get install ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

VENV=.venv
REQ=scripts/requirements.txt
stamp="$VENV/.kiln-req-$(sha256sum "$REQ" | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "[setup] python venv $VENV ($REQ)"
  PY=python3
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQ"
  rm -f "$VENV"/.kiln-req-*; touch "$stamp"
fi
echo "[setup] ok"
