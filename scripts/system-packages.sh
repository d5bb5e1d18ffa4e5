#!/usr/bin/env bash
# Installs the C libraries nnpipe links (Debian/Ubuntu) when any is missing:
# libprotobuf-c (ONNX), libhdf5 (Keras HDF5, datasets), OpenBLAS (GEMM), zlib (the prune
# report's gzip sizes; libhdf5-dev already pulls it in), pkg-config.
set -euo pipefail
packages=(pkg-config libprotobuf-c-dev libhdf5-dev libopenblas-dev zlib1g-dev)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing system packages: ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
