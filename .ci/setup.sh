#!/usr/bin/env bash
# Installs the Debian packages Faultline needs (only those missing), then configures and builds.
# Usage: .ci/setup.sh BUILD_DIR [extra cmake arguments...]
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${1:?usage: .ci/setup.sh BUILD_DIR [cmake args...]}
shift

packages=(
  cmake g++ make pkg-config
  libeigen3-dev libboost-program-options-dev libyaml-cpp-dev zlib1g-dev
  libonnx-dev libprotobuf-dev protobuf-compiler
  libsystemc-dev verilator
  libgtest-dev libbenchmark-dev
  libopenmpi-dev openmpi-bin python3-matplotlib
  dataset-fashion-mnist
  python3-onnx python3-numpy python3-torch
  python3-dev pybind11-dev python3-pybind11
  clang libclang-rt-14-dev
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo=sudo; fi
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

mkdir -p "$build_dir"
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release "$@" > "$build_dir/configure.log" 2>&1 || { cat "$build_dir/configure.log"; exit 1; }
cmake --build "$build_dir" -j"$(nproc)"
