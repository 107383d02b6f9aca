#!/bin/bash
# Builds the payload for a CUDA machine that has PyTorch but no .NET and no network (see README.md).
# Usage: tools/gpu-train/pack.sh TORCHSHARP_CHECKOUT [PAYLOAD_DIR]   (run from the repository root)
set -euo pipefail
TS=${1:?path to a TorchSharp source checkout at the packaged version (0.107.0)}
mkdir -p "${2:-.gpu}"
OUT=$(readlink -f "${2:-.gpu}")
PUB=$(mktemp -d)
dotnet publish src/AgentHost -c Release -o "$PUB" >/dev/null
# The machine's own libtorch replaces the CPU natives of the package.
(cd "$PUB" && rm -f libtorch*.so libc10*.so libLibTorchSharp.so libgomp* libbackend_with_compiler.so libjitbackend_test.so \
  libnnapi_backend.so libaoti_custom_ops.so libshm.so libtorchbind_test.so ./*.xml ./*.pdb)
tar -C "$PUB" -cf - . | xz -6 -T0 > "$OUT/app.tar.xz"
ROOT=$(dirname "$(readlink -f "$(command -v dotnet)")")
tar -C "$ROOT" -cf - dotnet host shared/Microsoft.NETCore.App shared/Microsoft.AspNetCore.App | xz -6 -T0 > "$OUT/dotnet.tar.xz"
tar -C ../shared/data -cf - corpus | xz -6 -T0 > "$OUT/corpus.tar.xz"
git -C "$TS" archive HEAD src/Native | gzip > "$OUT/tsnative.tgz"
cp tools/gpu-train/setup.sh tools/gpu-train/env.sh "$OUT/"
rm -rf "$PUB"
du -ch "$OUT"/* | tail -1
