#!/usr/bin/env bash
# llama-server for the peer comparison in benchmarks/concurrency.py, built once from the very
# llama.cpp sources our llama-cpp-python wheel vendors (the same version and flags as
# .ci/setup), so both sides run the same kernels. Prints the binary's path; a second run
# prints the cached one. About 10 minutes on two cores the first time.
#
#     .venv/bin/python benchmarks/concurrency.py --llama-server "$(bash benchmarks/build_llama_server.sh)"
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(sed -n 's/^LLAMA_CPP_VERSION=//p' .ci/setup)
flags=(-DGGML_NATIVE=ON -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF
    -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF -DBUILD_SHARED_LIBS=OFF)
if [ "$(uname -m)" = x86_64 ]; then
    # As .ci/setup: no AMX (some virtual machines advertise it and fault on its first use).
    no_amx="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
    flags+=("-DCMAKE_C_FLAGS=$no_amx" "-DCMAKE_CXX_FLAGS=$no_amx")
fi
home="${XDG_CACHE_HOME:-$HOME/.cache}/specdec_jupyter/tools/llama-server-$version"
binary="$home/build/bin/llama-server"
if [ ! -x "$binary" ]; then
    mkdir -p "$home"
    if [ ! -d "$home/src" ]; then
        .venv/bin/python -m pip download --quiet --no-deps --no-binary :all: \
            "llama-cpp-python==$version" -d "$home" >&2
        tar xzf "$home/llama_cpp_python-$version.tar.gz" -C "$home"
        mv "$home/llama_cpp_python-$version/vendor/llama.cpp" "$home/src"
        rm -rf "$home/llama_cpp_python-$version" "$home/llama_cpp_python-$version.tar.gz"
    fi
    cmake -S "$home/src" -B "$home/build" -DCMAKE_BUILD_TYPE=Release "${flags[@]}" >&2
    cmake --build "$home/build" --target llama-server -j "$(nproc)" >&2
fi
echo "$binary"
