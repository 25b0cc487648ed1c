#!/usr/bin/env bash
# Caption with the built-in models on an emulated ARM Debian bookworm (qemu-user-static) and on
# this x86 machine, and compare: 64-bit ARM (arm64: a Pi 4/5 with the 64-bit OS, a Jetson) with
# LiteRT, or 32-bit ARM (armhf, armv7l: Raspberry Pi OS 32-bit) with tflite-runtime 2.14.
#
# The ARM system gets the runtime only (no TensorFlow), from wheels downloaded on this machine:
# pip inside the emulated system may not reach the registry. On arm64 that is edgecap's base
# install (numpy, Pillow, click, tqdm, ai-edge-litert). On armhf, where PyPI has no numpy or
# Pillow wheels, numpy and Pillow are Debian's (python3-numpy 1.24, python3-pil 9.4, as on
# Raspberry Pi OS) and the venv sees them; tflite-runtime, click and tqdm come as wheels. /sys is
# not mounted into the chroot: LiteRT crashes under qemu when it is.
#
# The x86 side runs the same runtime: the venv of the README's first command for arm64 (LiteRT);
# for armhf, a venv with tflite-runtime 2.14 (X86_PYTHON, default .venv-tflite-runtime/bin/python,
# which .ci/run makes), since the reference kernels changed between tflite-runtime 2.14 and LiteRT.
#
# Photos of examples/: with the reference kernels the two CPUs must give token-identical captions
# and equal log-probabilities, greedy and beam 3, n-best included: any difference exits 1. With
# the default (optimised, XNNPACK) kernels the agreement is only reported: their int8 arithmetic
# differs between the CPUs.
#
# With --quality N it measures quality instead (a release check): the first N photos of Flickr8k
# test (../shared), captioned by every built-in captioner alone (no tagger) on ARM with the
# default kernels, and on x86 with each kernel set and with 1 and 2 threads; every file is scored
# on x86 (`edgecap evaluate CAPTIONS.jsonl`), and the x86 variants' range is the spread that the
# ARM figures are judged against (parity: within it). Prints a Markdown table.
#
# Usage: scripts/check_arm.sh [--arch arm64|armhf] [--quality N], as root (debootstrap, chroot and
#        binfmt need it), with the venv of the README's first command active (its python3 scores
#        and lists the models; with --quality, the [dev] install)
# Env:   EDGECAP_ARM_ROOT  the ARM root file system (default /var/tmp/edgecap-ARCH-bookworm; built
#                          once, reused)
#        EDGECAP_MODELS    built-in model names (default: every built-in captioner)
#        PYTHON            host Python with edgecap installed (default: python3)
#        X86_PYTHON        the x86 runtime to compare with (default: see above)
# Took 9 minutes here the first time on arm64 (the root file system included, kept and reused).
set -euo pipefail

QUALITY=0
ARCH=arm64
while [ $# -gt 0 ]; do
  case "$1" in
    --quality) QUALITY=${2:?--quality needs a number of photos}; shift 2 ;;
    --arch) ARCH=${2:?--arch needs arm64 or armhf}; shift 2 ;;
    *) echo "check_arm.sh: unknown argument $1 (--arch arm64|armhf, --quality N)" >&2; exit 2 ;;
  esac
done

REPO=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
case "$ARCH" in
  arm64)
    QEMU=qemu-aarch64
    PACKAGES=python3,python3-venv
    PLATFORMS=(manylinux_2_27_aarch64 manylinux_2_17_aarch64 manylinux2014_aarch64)
    X86_PYTHON=${X86_PYTHON:-$PYTHON} ;;
  armhf)
    QEMU=qemu-arm
    PACKAGES=python3,python3-venv,python3-numpy,python3-pil
    PLATFORMS=(manylinux_2_34_armv7l manylinux_2_31_armv7l manylinux2014_armv7l linux_armv7l)
    X86_PYTHON=${X86_PYTHON:-$REPO/.venv-tflite-runtime/bin/python}
    [ -x "$X86_PYTHON" ] || { echo "check_arm.sh: no x86 tflite-runtime venv at $X86_PYTHON (.ci/run makes it; or set X86_PYTHON)" >&2; exit 2; } ;;
  *) echo "check_arm.sh: --arch must be arm64 or armhf, not $ARCH" >&2; exit 2 ;;
esac
ROOT=${EDGECAP_ARM_ROOT:-/var/tmp/edgecap-$ARCH-bookworm}
SUITE=bookworm  # Python 3.11, as Raspberry Pi OS bookworm
PYVER=3.11
WORK=$(mktemp -d)
trap 'umount -l "$ROOT/proc" "$ROOT/dev" 2>/dev/null || true; rm -rf "$WORK"' EXIT

log() { printf '\n== %s\n' "$*" >&2; }

[ "$(id -u)" = 0 ] || { echo "check_arm.sh: run as root (debootstrap, chroot, binfmt_misc)" >&2; exit 2; }

log "host tools: debootstrap, qemu-user-static, binfmt-support"
if ! command -v debootstrap >/dev/null || [ ! -e "/usr/bin/$QEMU-static" ] || ! command -v update-binfmts >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap qemu-user-static binfmt-support >/dev/null
fi
# In a container binfmt_misc may not be mounted; ARM programs then cannot run.
mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
update-binfmts --enable "$QEMU" 2>/dev/null || true
[ -e "/proc/sys/fs/binfmt_misc/$QEMU" ] || { echo "check_arm.sh: $QEMU is not registered with binfmt_misc" >&2; exit 2; }

if [ ! -x "$ROOT/usr/bin/python$PYVER" ]; then
  log "$ARCH Debian $SUITE root file system in $ROOT (debootstrap, about 10 minutes)"
  rm -rf "$ROOT.partial"
  debootstrap --arch="$ARCH" --variant=minbase --include="$PACKAGES" "$SUITE" "$ROOT.partial" >"$WORK/debootstrap.log" 2>&1 \
    || { tail -20 "$WORK/debootstrap.log" >&2; exit 1; }
  mv "$ROOT.partial" "$ROOT"  # only a complete system is reused
fi
echo "$ARCH system: $(chroot "$ROOT" uname -m), $(chroot "$ROOT" "python$PYVER" --version)" >&2

log "$ARCH wheels of the runtime (downloaded here)"
WHEELS="$WORK/wheels"
"$PYTHON" -m pip wheel --quiet --no-deps -w "$WHEELS" "$REPO"
download=("$PYTHON" -m pip download --quiet --only-binary=:all: --python-version "$PYVER" --implementation cp -d "$WHEELS")
for p in "${PLATFORMS[@]}"; do download+=(--platform "$p"); done
if [ "$ARCH" = arm64 ]; then
  "${download[@]}" "$WHEELS"/edgecap-*.whl
else  # markers are the host's to pip download: name the armhf runtime's wheels one by one
  "${download[@]}" --no-deps "tflite-runtime==2.14.*" "click>=8.1" "tqdm>=4.60"
fi
ls "$WHEELS" >&2

log "install into a venv of the $ARCH system"
rm -rf "$ROOT/opt/edgecap" && mkdir -p "$ROOT/opt/edgecap"
cp -r "$WHEELS" "$ROOT/opt/edgecap/wheels"
cp -r "$REPO/examples" "$ROOT/opt/edgecap/examples"
mount -t proc proc "$ROOT/proc"
mount --bind /dev "$ROOT/dev"
if [ "$ARCH" = arm64 ]; then
  chroot "$ROOT" "python$PYVER" -m venv /opt/edgecap/venv
  chroot "$ROOT" /opt/edgecap/venv/bin/pip install --quiet --no-index --find-links /opt/edgecap/wheels edgecap
else
  chroot "$ROOT" "python$PYVER" -m venv --system-site-packages /opt/edgecap/venv
  chroot "$ROOT" sh -c "/opt/edgecap/venv/bin/pip install --quiet --no-index --no-deps /opt/edgecap/wheels/*.whl"
fi
chroot "$ROOT" /opt/edgecap/venv/bin/python -c "import platform; from edgecap.runtime.presets import list_presets; from edgecap.runtime import Captioner; print(Captioner.from_preset('multimodal_rnn_flickr8k').backend, 'on', platform.machine())"

if [ "$QUALITY" != 0 ]; then
  MODELS=${EDGECAP_MODELS:-$("$PYTHON" -c "from edgecap.runtime.presets import preset_names; print(' '.join(preset_names(task='captioning')))")}
  FLICKR=$("$PYTHON" -c "from edgecap.utils import shared_dir; print(shared_dir() / 'data' / 'flickr8k')")
  [ -f "$FLICKR/Flickr_8k.testImages.txt" ] || { echo "check_arm.sh --quality: no Flickr8k in $FLICKR" >&2; exit 2; }
  log "the first $QUALITY Flickr8k test photos"
  rm -rf "$ROOT/opt/edgecap/photos" && mkdir -p "$ROOT/opt/edgecap/photos" "$WORK/x86" "$WORK/arm"
  head -n "$QUALITY" "$FLICKR/Flickr_8k.testImages.txt" | while read -r name; do cp -L "$FLICKR/Images/$name" "$ROOT/opt/edgecap/photos/"; done
  for model in $MODELS; do
    log "$model: $ARCH, default kernels (emulated: about 1 s a photo on arm64)"
    chroot "$ROOT" sh -c "cd /opt/edgecap && venv/bin/edgecap caption photos --model $model --tagger none --json" >"$WORK/arm/$model.default.jsonl"
    for variant in "default 1" "default 2" "builtin 1" "reference 1"; do
      set -- $variant
      log "$model: x86, $1 kernels, $2 thread(s)"
      "$X86_PYTHON" -m edgecap.cli caption "$ROOT/opt/edgecap/photos" --model "$model" --tagger none --json --kernels "$1" --threads "$2" >"$WORK/x86/$model.$1.t$2.jsonl"
    done
  done
  log "scores (edgecap evaluate CAPTIONS.jsonl --split test)"
  for f in "$WORK"/x86/*.jsonl "$WORK"/arm/*.jsonl; do
    "$PYTHON" -m edgecap.cli evaluate "$f" --split test --output "${f%.jsonl}.json" >/dev/null
  done
  "$PYTHON" - "$WORK" "$QUALITY" "$ARCH" <<'EOF'
import json, sys
from pathlib import Path

work, n, arch = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
metrics = ("BLEU-4", "METEOR", "CIDEr-D")
# on armhf tflite-runtime runs the reference kernels whatever is asked (edgecap.runtime.interpreter.kernels_for)
base_key, arm_kernels = ("reference.t1", "reference") if arch == "armhf" else ("default.t1", "default")
print(f"| model ({n} Flickr8k test photos) | CPU, kernels, threads | " + " | ".join(metrics) + f" | captions as x86 {arm_kernels}, 1 thread |")
print("|---|---|" + "---|" * (len(metrics) + 1))
for arm in sorted((work / "arm").glob("*.default.json")):
    model = arm.name.split(".")[0]
    x86 = {p.name[len(model) + 1 : -len(".json")]: json.loads(p.read_text()) for p in (work / "x86").glob(f"{model}.*.json")}
    base = {c["image_id"]: c["caption"] for c in x86[base_key]["captions"]}
    rows = [(f"x86, {k.replace('.t', ', ')}", r) for k, r in sorted(x86.items())]
    rows.append((f"**{arch}, {arm_kernels}**", json.loads(arm.read_text())))
    for label, r in rows:
        same = sum(base[c["image_id"]] == c["caption"] for c in r["captions"])
        print(f"| {model} | {label} | " + " | ".join(f"{r['metrics'][m]:.2f}" for m in metrics) + f" | {same}/{len(base)} |")
    spread = {m: max(r["metrics"][m] for r in x86.values()) - min(r["metrics"][m] for r in x86.values()) for m in metrics}
    gap = {m: json.loads(arm.read_text())["metrics"][m] - x86[base_key]["metrics"][m] for m in metrics}
    verdict = "within" if all(abs(gap[m]) <= spread[m] for m in metrics) else "OUTSIDE"
    print(f"| {model} | {arch} − x86 {arm_kernels} (x86 spread) | " + " | ".join(f"{gap[m]:+.2f} ({spread[m]:.2f})" for m in metrics) + f" | {verdict} the spread |")
EOF
  exit 0
fi

MODELS=${EDGECAP_MODELS:-$("$PYTHON" -c "from edgecap.runtime.presets import preset_names; print(' '.join(preset_names(task='captioning')))")}
mkdir -p "$WORK/x86" "$WORK/arm"
for model in $MODELS; do
  for beam in 1 3; do
    for kernels in reference default; do
      flag="--kernels $kernels"
      run="$model.beam$beam.$kernels"
      log "$run"
      (cd "$REPO" && "$X86_PYTHON" -m edgecap.cli caption examples --model "$model" --beam-size "$beam" --nbest "$beam" --json $flag) >"$WORK/x86/$run.jsonl"
      chroot "$ROOT" sh -c "cd /opt/edgecap && venv/bin/edgecap caption examples --model $model --beam-size $beam --nbest $beam --json $flag" >"$WORK/arm/$run.jsonl"
    done
  done
done

log "compare"
"$PYTHON" - "$WORK" "$ARCH" <<'EOF'
import json, sys
from pathlib import Path

work, arch = Path(sys.argv[1]), sys.argv[2]
failed = False
for x86 in sorted((work / "x86").glob("*.jsonl")):
    arm = work / "arm" / x86.name
    a = [json.loads(line) for line in x86.read_text().splitlines()]
    b = [json.loads(line) for line in arm.read_text().splitlines()]
    same = sum(p["nbest"] == q["nbest"] and p["error"] is None for p, q in zip(a, b)) if len(a) == len(b) else 0
    strict = x86.stem.endswith("reference")
    verdict = "identical" if same == len(a) else ("MISMATCH" if strict else "differ (optimised kernels: reported only)")
    failed |= strict and same != len(a)
    print(f"{x86.stem}: {same}/{len(a)} photos with identical n-best captions and log-probabilities: {verdict}")
    for p, q in zip(a, b):
        print(f"  {Path(p['image']).name:16s} x86   {p['caption']!r} ({p['log_prob']})")
        print(f"  {'':16s} {arch:5s} {q['caption']!r} ({q['log_prob']})")
sys.exit(1 if failed else 0)
EOF
