# Source on the GPU machine after setup.sh: puts glm on the machine's .NET-less PyTorch install.
# GLM_LIBTORCH_DIR must be torch's own lib folder: libtorch_cuda.so finds the CUDA libraries through $ORIGIN-relative
# RPATHs, so a symlink to it from another folder fails to load (libcusparseLt.so.0 not found).
T=$(python3 -c 'import torch,os;print(os.path.dirname(torch.__file__))')
export DOTNET_ROOT=/tmp/dotnet PATH=/tmp/dotnet:$PATH DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 \
  GLM_LIBTORCH_DIR=$T/lib LD_LIBRARY_PATH=$T/lib:${LD_LIBRARY_PATH:-}
glm() { /tmp/dotnet/dotnet /tmp/app/glm.dll "$@"; }
