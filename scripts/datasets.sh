#!/usr/bin/env bash
# Fetches the public real-world series some tests judge the detectors on,
# into target/datasets/ (not committed: the data is not ours to relicense).
#
# - sunspots.csv: monthly mean sunspot numbers, 1749-1983 (R's `sunspots`
#   dataset, as pmdarima ships it on PyPI), as `timestamp,value`. Its runs
#   of months at exactly 0.0 (one of 21 months around 1810) are a real flat
#   stretch.
#
# Needs python3 with pip and access to PyPI (the first time only). The file
# inside the package is checked against its SHA-256.
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/datasets
[[ -s $out/sunspots.csv ]] && exit 0
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "fetching pmdarima 2.1.1 from PyPI for its copy of the monthly sunspot numbers" >&2
python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$work" pmdarima==2.1.1
python3 - "$work" "$out/sunspots.csv" <<'PY'
import glob, gzip, hashlib, sys, zipfile
work, target = sys.argv[1], sys.argv[2]
wheel = glob.glob(f"{work}/pmdarima-2.1.1-*.whl")[0]
raw = zipfile.ZipFile(wheel).read("pmdarima/datasets/data/sunspots.txt.gz")
digest = hashlib.sha256(raw).hexdigest()
expected = "da008320ca46c8fb7d4c08a6dc5ba1282be9209c8b943a7ca5ea5d5409d0b36a"
if digest != expected:
    sys.exit(f"sunspots.txt.gz has SHA-256 {digest}, expected {expected}")
values = [float(x) for line in gzip.decompress(raw).decode().splitlines() for x in line.split()]
assert len(values) == 2820, len(values)
with open(target, "w") as f:
    f.write("timestamp,value\n")
    for i, v in enumerate(values):
        f.write(f"{1749 + i // 12}-{i % 12 + 1:02d}-01T00:00:00Z,{v}\n")
PY
echo "wrote $out/sunspots.csv" >&2
