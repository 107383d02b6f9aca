#!/bin/bash
# On the GPU machine, from the folder that holds the payload: unpacks .NET, glm and the corpus under /tmp and builds
# TorchSharp's LibTorchSharp against this machine's libtorch (skipped when native/libLibTorchSharp.so is in the payload).
set -e
G=$(cd "$(dirname "$0")" && pwd)
mkdir -p /tmp/dotnet /tmp/app /tmp/shared/data
tar -xJf "$G/dotnet.tar.xz" -C /tmp/dotnet &
tar -xJf "$G/app.tar.xz" -C /tmp/app &
tar -xJf "$G/corpus.tar.xz" -C /tmp/shared/data &
T=$(python3 -c 'import torch,os;print(os.path.dirname(torch.__file__))')
echo "torch at $T: $(python3 -c 'import torch;print(torch.__version__, "CUDA", torch.version.cuda)')"
if [ -f "$G/native/libLibTorchSharp.so" ]; then
  cp "$G/native/libLibTorchSharp.so" "$T/lib/"
else
  ABI=$(python3 -c 'import torch;print(int(torch._C._GLIBCXX_USE_CXX11_ABI))')
  rm -rf /tmp/ltsb && mkdir -p /tmp/ltsb && tar -xzf "$G/tsnative.tgz" -C /tmp/ltsb
  cd /tmp/ltsb/src/Native/LibTorchSharp
  # TorchSharp's own CMake flags, minus -Werror (a newer libtorch warns where the one it was written for did not).
  FLAGS="-O2 -fPIC -fvisibility=hidden -D_GLIBCXX_USE_CXX11_ABI=$ABI -DNDEBUG -D__LINUX__ -D_NO_ASYNCRTIMP -D_NO_PPLXIMP -I.. -I. -I$T/include -I$T/include/torch/csrc/api/include -w"
  start=$(date +%s)
  gcc $FLAGS -c crc32c.c -o crc32c.o
  ls ./*.cpp | xargs -P "$(nproc)" -I{} sh -c "g++ -std=c++17 $FLAGS -c {} -o {}.o || echo FAILED {}"
  g++ -shared -o "$T/lib/libLibTorchSharp.so" ./*.o -L"$T/lib" -ltorch -ltorch_cpu -lc10 -Wl,-Bsymbolic -Wl,-Bsymbolic-functions -Wl,-rpath,"$T/lib"
  mkdir -p "$G/native" && cp "$T/lib/libLibTorchSharp.so" "$G/native/"
  echo "LibTorchSharp built in $(( $(date +%s) - start )) s"
fi
wait
echo "ready: source $G/env.sh, then glm …"
