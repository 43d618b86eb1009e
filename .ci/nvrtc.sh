#!/usr/bin/env bash
# Installs NVRTC 13.0 and the CUDA 13.0 runtime headers from their PyPI wheels, so that a machine
# with no GPU and no CUDA toolkit can compile every modelc kernel to PTX (tests/nvrtc_compile.rs).
#
# Idempotent: a second run finds the marker file and installs nothing.
# Prints, on stdout and nothing else, the lines to evaluate:
#   eval "$(.ci/nvrtc.sh)"
# which export
#   MODELC_CUDA_INCLUDE  the include dir holding cuda_bf16.h / cuda_fp16.h (read by modelc's NVRTC wrapper)
#   MODELC_NVRTC_LIB     the absolute path of libnvrtc.so.13 (modelc pre-loads it, so the next line is a fallback)
#   LD_LIBRARY_PATH      prefixed with the lib dir: cudarc dlopens `libnvrtc.so.13` by bare name
#   MODELC_CUOBJDUMP     cuobjdump 13.2 (nvdisasm beside it), when its wheels installed
#
# The 13.0 series is pinned on purpose: PTX from a newer NVRTC carries a PTX ISA version that the
# 580 driver (CUDA 13.0) of the project's H100 machines rejects.
set -euo pipefail

NVRTC_VERSION="${MODELC_NVRTC_VERSION:-13.0.88}"
RUNTIME_VERSION="${MODELC_CUDART_VERSION:-13.0.96}"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dest="$root/cache/nvrtc-$NVRTC_VERSION"
marker="$dest/.installed"
lib="$dest/nvidia/cu13/lib"
inc="$dest/nvidia/cu13/include"

# Installs the wheels $2... into folder $1 (through $1.tmp, so an interrupted install leaves no
# half folder) and marks it installed; fails if pip fails or a file $CHECK names is missing.
install_wheels() {
    local into="$1"
    shift
    rm -rf "$into.tmp"
    mkdir -p "$into.tmp"
    # pip's chatter goes to stderr so that stdout stays evaluable.
    PIP_ROOT_USER_ACTION=ignore "${PYTHON:-python3}" -m pip install --quiet --disable-pip-version-check --no-deps \
        --no-compile --target "$into.tmp" "$@" 1>&2 || { rm -rf "$into.tmp"; return 1; }
    for f in $CHECK; do
        if [[ ! -e "$into.tmp/$f" ]]; then
            echo "nvrtc.sh: expected $f after installing $*; the wheels' layout changed" >&2
            rm -rf "$into.tmp"
            return 1
        fi
    done
    rm -rf "$into"
    mv "$into.tmp" "$into"
    touch "$into/.installed"
}

if [[ ! -f "$marker" ]]; then
    CHECK="nvidia/cu13/lib/libnvrtc.so.13 nvidia/cu13/include/cuda_bf16.h" \
        install_wheels "$dest" "nvidia-cuda-nvrtc==$NVRTC_VERSION" "nvidia-cuda-runtime==$RUNTIME_VERSION"
fi

# cuobjdump and nvdisasm (for `modelc kernels --sass` and its test): their own folder and
# marker; optional, so a failed install only warns and exports nothing for them.
TOOLS_VERSION="${MODELC_CUDA_TOOLS_VERSION:-13.2.51}"
NVDISASM_VERSION="${MODELC_NVDISASM_VERSION:-13.2.86}"
tools="$root/cache/cuda-tools-$TOOLS_VERSION"
if [[ ! -f "$tools/.installed" ]]; then
    CHECK="nvidia/cu13/bin/cuobjdump nvidia/cu13/bin/nvdisasm" \
        install_wheels "$tools" "nvidia-cuda-cuobjdump==$TOOLS_VERSION" "nvidia-cuda-nvdisasm==$NVDISASM_VERSION" ||
        echo "nvrtc.sh: cuobjdump/nvdisasm not installed; \`modelc kernels --sass\` tests will skip" >&2
fi
if [[ -f "$tools/.installed" ]]; then
    echo "export MODELC_CUOBJDUMP='$tools/nvidia/cu13/bin/cuobjdump'"
fi

echo "export MODELC_CUDA_INCLUDE='$inc'"
echo "export MODELC_NVRTC_LIB='$lib/libnvrtc.so.13'"
echo "export LD_LIBRARY_PATH='$lib'\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
