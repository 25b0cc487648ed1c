#!/usr/bin/env bash
# Caption examples/ with the built-in models on an emulated arm64 Debian (qemu-user-static) and
# on this x86 machine, and compare.
#
# The arm64 system gets the *base* install only (the runtime: numpy, Pillow, click, tqdm,
# ai-edge-litert; no TensorFlow), from aarch64 wheels downloaded on this machine: pip inside the
# emulated system may not reach the registry. /sys is not mounted into the chroot: LiteRT
# crashes under qemu when it is.
#
# With --reference-kernels (TFLite's reference kernels) the two CPUs must give token-identical
# captions and equal log-probabilities, greedy and beam 3, n-best included: any difference
# exits 1. With the default (optimised, XNNPACK) kernels the agreement is only reported: their
# int8 arithmetic differs between the two CPUs.
#
# Usage: scripts/check_aarch64.sh, as root (debootstrap, chroot and binfmt need it), with the venv
#        of the README's first command active (its python3 runs the x86 side)
# Env:   EDGECAP_ARM64_ROOT  the arm64 root file system (default /var/tmp/edgecap-arm64-bookworm;
#                            built once, reused)
#        EDGECAP_MODELS      built-in model names (default: every built-in captioner)
#        PYTHON              host Python with edgecap installed (default: python3)
# Took 9 minutes here the first time (the root file system included, kept and reused after).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
ROOT=${EDGECAP_ARM64_ROOT:-/var/tmp/edgecap-arm64-bookworm}
PYTHON=${PYTHON:-python3}
SUITE=bookworm  # Python 3.11, as Raspberry Pi OS bookworm
PYVER=3.11
WORK=$(mktemp -d)
trap 'umount -l "$ROOT/proc" "$ROOT/dev" 2>/dev/null || true; rm -rf "$WORK"' EXIT

log() { printf '\n== %s\n' "$*" >&2; }

[ "$(id -u)" = 0 ] || { echo "check_aarch64.sh: run as root (debootstrap, chroot, binfmt_misc)" >&2; exit 2; }

log "host tools: debootstrap, qemu-user-static, binfmt-support"
if ! command -v debootstrap >/dev/null || [ ! -e /usr/bin/qemu-aarch64-static ] || ! command -v update-binfmts >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap qemu-user-static binfmt-support >/dev/null
fi
# In a container binfmt_misc may not be mounted; arm64 programs then cannot run.
mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
update-binfmts --enable qemu-aarch64 2>/dev/null || true
[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || { echo "check_aarch64.sh: qemu-aarch64 is not registered with binfmt_misc" >&2; exit 2; }

if [ ! -x "$ROOT/usr/bin/python$PYVER" ]; then
  log "arm64 Debian $SUITE root file system in $ROOT (debootstrap, about 10 minutes)"
  rm -rf "$ROOT.partial"
  debootstrap --arch=arm64 --variant=minbase --include="python3,python3-venv" "$SUITE" "$ROOT.partial" >"$WORK/debootstrap.log" 2>&1 \
    || { tail -20 "$WORK/debootstrap.log" >&2; exit 1; }
  mv "$ROOT.partial" "$ROOT"  # only a complete system is reused
fi
echo "arm64 system: $(chroot "$ROOT" uname -m), $(chroot "$ROOT" "python$PYVER" --version)" >&2

log "aarch64 wheels of edgecap's base install (downloaded here)"
WHEELS="$WORK/wheels"
"$PYTHON" -m pip wheel --quiet --no-deps -w "$WHEELS" "$REPO"
"$PYTHON" -m pip download --quiet --only-binary=:all: --python-version "$PYVER" --implementation cp \
  --platform manylinux_2_27_aarch64 --platform manylinux_2_17_aarch64 --platform manylinux2014_aarch64 \
  -d "$WHEELS" "$WHEELS"/edgecap-*.whl
ls "$WHEELS" >&2

log "install into a venv of the arm64 system"
rm -rf "$ROOT/opt/edgecap" && mkdir -p "$ROOT/opt/edgecap"
cp -r "$WHEELS" "$ROOT/opt/edgecap/wheels"
cp -r "$REPO/examples" "$ROOT/opt/edgecap/examples"
mount -t proc proc "$ROOT/proc"
mount --bind /dev "$ROOT/dev"
chroot "$ROOT" "python$PYVER" -m venv /opt/edgecap/venv
chroot "$ROOT" /opt/edgecap/venv/bin/pip install --quiet --no-index --find-links /opt/edgecap/wheels edgecap
chroot "$ROOT" /opt/edgecap/venv/bin/python -c "import platform, ai_edge_litert; print('arm64 runtime on', platform.machine())"

MODELS=${EDGECAP_MODELS:-$("$PYTHON" -c "from edgecap.runtime.presets import preset_names; print(' '.join(preset_names(task='captioning')))")}
mkdir -p "$WORK/x86" "$WORK/arm64"
for model in $MODELS; do
  for beam in 1 3; do
    for kernels in reference default; do
      flag=$([ $kernels = reference ] && echo --reference-kernels || true)
      run="$model.beam$beam.$kernels"
      log "$run"
      (cd "$REPO" && "$PYTHON" -m edgecap.cli caption examples --model "$model" --beam-size "$beam" --nbest "$beam" --json $flag) >"$WORK/x86/$run.jsonl"
      chroot "$ROOT" sh -c "cd /opt/edgecap && venv/bin/edgecap caption examples --model $model --beam-size $beam --nbest $beam --json $flag" >"$WORK/arm64/$run.jsonl"
    done
  done
done

log "compare"
"$PYTHON" - "$WORK" <<'EOF'
import json, sys
from pathlib import Path

work = Path(sys.argv[1])
failed = False
for x86 in sorted((work / "x86").glob("*.jsonl")):
    arm = work / "arm64" / x86.name
    a = [json.loads(line) for line in x86.read_text().splitlines()]
    b = [json.loads(line) for line in arm.read_text().splitlines()]
    same = sum(p["nbest"] == q["nbest"] and p["error"] is None for p, q in zip(a, b)) if len(a) == len(b) else 0
    strict = x86.stem.endswith("reference")
    verdict = "identical" if same == len(a) else ("MISMATCH" if strict else "differ (optimised kernels: reported only)")
    failed |= strict and same != len(a)
    print(f"{x86.stem}: {same}/{len(a)} photos with identical n-best captions and log-probabilities: {verdict}")
    for p, q in zip(a, b):
        print(f"  {Path(p['image']).name:16s} x86   {p['caption']!r} ({p['log_prob']})")
        print(f"  {'':16s} arm64 {q['caption']!r} ({q['log_prob']})")
sys.exit(1 if failed else 0)
EOF
