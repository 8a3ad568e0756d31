#!/usr/bin/env bash
# The GPU checks of the acceleration path (benchmarks/gpu/check.py; reports/gpu/README.md).
#
#   bash benchmarks/gpu/check.sh                                  # on a GPU: writes reports/gpu/GPU.md
#   bash benchmarks/gpu/check.sh --smoke --out /tmp/GPU-smoke.md  # anywhere, < 2 minutes
#   bash benchmarks/gpu/check.sh --budget-s 300                   # a shorter budget (default 480 s)
#
# Sets up the environment and runs check.py under a hard time limit of the budget + 60 s
# (check.py skips what does not fit in --budget-s itself; the limit only guards a hang).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$repo"

# The project's virtual environment when there is one and none is active; else the python on PATH
# (check.py imports the checkout itself when the package is not installed).
if [ -z "${VIRTUAL_ENV:-}" ] && [ -f "$repo/.venv/bin/activate" ]; then
  # shellcheck disable=SC1091
  . "$repo/.venv/bin/activate"
fi
python_bin="$(command -v python || command -v python3)"

export HF_HUB_OFFLINE=1          # nothing is downloaded; never wait on a network
export PYTHONUNBUFFERED=1        # progress lines appear as they happen
export TOKENIZERS_PARALLELISM=false
# CPU threads: all cores on a GPU machine (the CPU references of (a)), as set by the caller otherwise.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(nproc)}"

budget=480
prev=""
for arg in "$@"; do
  case "$arg" in
    --budget-s=*) budget="${arg#--budget-s=}" ;;
  esac
  if [ "$prev" = "--budget-s" ]; then budget="$arg"; fi
  prev="$arg"
done
hard=$(( ${budget%.*} + 60 ))

echo "check.sh: $("$python_bin" --version 2>&1), budget ${budget} s, hard limit ${hard} s" >&2
exec timeout --signal=TERM --kill-after=15 "$hard" "$python_bin" "$here/check.py" "$@"
