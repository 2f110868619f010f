#!/usr/bin/env bash
# Install simfl and everything it needs into the current Python environment:
# Debian's Fashion-MNIST package (the built-in data set), torch 2.13.0 (CPU), simfl.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d /usr/share/datasets/fashion-mnist ]; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null
  else
    echo "note: install Debian's dataset-fashion-mnist (as root), or put the four Fashion-MNIST IDX files" \
         "in a directory and set task.data_dir in your scenario" >&2
  fi
fi
# torch first, pinned to the CPU build: an unpinned torch would pull a multi-GB CUDA build.
python3 -m pip install -q torch==2.13.0
python3 -m pip install -q -e '.[test]'
