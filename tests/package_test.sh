#!/usr/bin/env bash
# Proves the installed package: installs BUILD_DIR into a temporary prefix, builds the standalone
# examples/ project against it with find_package(glide) (shared, then static library) and runs
# train_and_predict, which must reach P@1 >= 0.8.
# Usage: tests/package_test.sh BUILD_DIR EXAMPLES_DIR [CXX_COMPILER]
set -euo pipefail
build=$1 examples=$2 cxx=${3:-c++}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)

cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
for f in include/glide/glide.h include/glide/error.h include/glide/version.h \
         lib/cmake/glide/glideConfig.cmake lib/cmake/glide/glideConfigVersion.cmake; do
  [ -f "$tmp/prefix/$f" ] || { echo "FAIL: $f not installed"; exit 1; }
done
# Public headers must not reach into the engine's internals.
if grep -n '#include "' "$tmp"/prefix/include/glide/*.h | grep -v '"glide/'; then
  echo "FAIL: an installed header includes a non-public header"; exit 1
fi

for variant in shared static; do
  static=OFF
  [ $variant = static ] && static=ON
  cmake -S "$examples" -B "$tmp/ex-$variant" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_PREFIX_PATH="$tmp/prefix" -DGLIDE_USE_STATIC_LIBS=$static \
    >"$tmp/configure.log" 2>&1 || { cat "$tmp/configure.log"; exit 1; }
  cmake --build "$tmp/ex-$variant" -j2 >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; exit 1; }
  libs=$(ldd "$tmp/ex-$variant/train_and_predict")
  if [ $variant = shared ]; then
    [[ $libs == *"$tmp/prefix/lib/libglide.so"* ]] ||
      { echo "FAIL: not linked to the installed libglide.so"; echo "$libs"; exit 1; }
  else
    [[ $libs != *libglide* ]] || { echo "FAIL: the static variant links libglide.so"; exit 1; }
  fi
  out=$(OMP_NUM_THREADS=2 "$tmp/ex-$variant/train_and_predict")
  echo "[$variant] $out"
  p1=$(echo "$out" | sed -n 's/.*: P@1 \([0-9.]*\).*/\1/p' | tail -1)
  [ -n "$p1" ] || { echo "FAIL: no P@1 in the output"; exit 1; }
  awk -v p="$p1" 'BEGIN { exit !(p >= 0.8) }' || { echo "FAIL: P@1 $p1 < 0.8"; exit 1; }
done
# A version the package does not satisfy is refused (SameMajorVersion).
mkdir -p "$tmp/v"
printf 'cmake_minimum_required(VERSION 3.25)\nproject(v LANGUAGES CXX)\nfind_package(glide 99 REQUIRED)\n' >"$tmp/v/CMakeLists.txt"
if cmake -S "$tmp/v" -B "$tmp/v/b" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null 2>&1; then
  echo "FAIL: find_package(glide 99) succeeded"; exit 1
fi
echo "package test passed"
