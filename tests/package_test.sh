#!/usr/bin/env bash
# Proves the installed package: installs BUILD_DIR into a temporary prefix, builds the standalone
# examples/ project against it with find_package(glide) (shared, then static library) and runs
# train_and_predict, which must reach P@1 >= 0.8; then the same program built with pkg-config
# (glide.pc), the installed glide command line, and the package's version check (same 0.x minor).
# Usage: tests/package_test.sh BUILD_DIR EXAMPLES_DIR [CXX_COMPILER]
set -euo pipefail
build=$1 examples=$2 cxx=${3:-c++}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)

cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
for f in include/glide/glide.h include/glide/error.h include/glide/version.h \
         lib/cmake/glide/glideConfig.cmake lib/cmake/glide/glideConfigVersion.cmake \
         lib/pkgconfig/glide.pc bin/glide; do
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
version=$(sed -n 's/^set(PACKAGE_VERSION "\(.*\)")$/\1/p' \
  "$tmp/prefix/lib/cmake/glide/glideConfigVersion.cmake")
[[ $version =~ ^([0-9]+)\.([0-9]+)\.[0-9]+$ ]] || { echo "FAIL: package version '$version'"; exit 1; }
major=${BASH_REMATCH[1]} minor=${BASH_REMATCH[2]}

# The command line, installed, says the same version.
[ "$("$tmp/prefix/bin/glide" --version)" = "glide $version" ] ||
  { echo "FAIL: installed glide --version: $("$tmp/prefix/bin/glide" --version)"; exit 1; }

# pkg-config: the installed glide.pc (relocatable: the prefix is found from the file's place)
# builds and links the example against the shared library.
if command -v pkg-config >/dev/null; then
  export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig"
  [ "$(pkg-config --modversion glide)" = "$version" ] || { echo "FAIL: glide.pc version"; exit 1; }
  # shellcheck disable=SC2046  # the flags are words
  "$cxx" -std=c++20 -O2 "$examples/train_and_predict.cpp" -o "$tmp/pc_example" \
    $(pkg-config --cflags --libs glide) -Wl,-rpath,"$tmp/prefix/lib" >"$tmp/pc.log" 2>&1 ||
    { cat "$tmp/pc.log"; echo "FAIL: building with pkg-config glide"; exit 1; }
  [[ $(ldd "$tmp/pc_example") == *"$tmp/prefix/lib/libglide.so"* ]] ||
    { echo "FAIL: the pkg-config build is not linked to the installed libglide.so"; exit 1; }
  out=$(OMP_NUM_THREADS=2 "$tmp/pc_example")
  echo "[pkg-config] $out"
  [[ $out == *"P@1"* ]] || { echo "FAIL: the pkg-config build printed no P@1"; exit 1; }
else
  echo "note: pkg-config not found; glide.pc checked for its version line only"
  grep -qx "Version: $version" "$tmp/prefix/lib/pkgconfig/glide.pc" ||
    { echo "FAIL: glide.pc version"; exit 1; }
fi

# The version check: the same MAJOR.MINOR is accepted (0.x minors may break, so only that);
# another minor, an older one included, or another major is refused.
find_glide() {
  rm -rf "$tmp/v"
  mkdir -p "$tmp/v"
  printf 'cmake_minimum_required(VERSION 3.25)\nproject(v LANGUAGES CXX)\nfind_package(glide %s REQUIRED)\n' \
    "$1" >"$tmp/v/CMakeLists.txt"
  cmake -S "$tmp/v" -B "$tmp/v/b" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null 2>&1
}
find_glide "$major.$minor" || { echo "FAIL: find_package(glide $major.$minor) failed"; exit 1; }
find_glide "$major.$minor.0" || { echo "FAIL: find_package(glide $major.$minor.0) failed"; exit 1; }
for refused in "$major.$((minor + 1))" "$((major + 1)).$minor" 99; do
  if find_glide "$refused"; then echo "FAIL: find_package(glide $refused) succeeded"; exit 1; fi
done
if [ "$minor" -gt 0 ]; then
  if find_glide "$major.$((minor - 1))"; then
    echo "FAIL: find_package(glide $major.$((minor - 1))) succeeded (another minor)"; exit 1
  fi
fi
echo "package test passed"
