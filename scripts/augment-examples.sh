#!/usr/bin/env bash
# Regenerates the example images of docs/data.md with `nectargan data preview`:
# the same two synthetic pairs (seed 1), once without augmentation and once per
# augmentation at p=1 with its default parameters.
set -euo pipefail
cd "$(dirname "$0")/.."
NECTARGAN="${NECTARGAN:-.venv/bin/nectargan}"
OUT=docs/images/augment
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT"
common=(--config demo --n 2 --seed 1
        --set common.output_directory="$WORK"
        --set dataloader.synthetic.size=128 --set dataloader.load_size=143
        --set dataloader.crop_size=128 --set dataloader.augment.hflip.p=0)
"$NECTARGAN" data preview "${common[@]}" --output "$OUT/none.png"  # random crop only
for name in hflip vflip rot90 rotate elastic optical_distortion coarse_dropout \
            color_jitter gamma noise blur motion_blur grayscale jpeg; do
    "$NECTARGAN" data preview "${common[@]}" --set "dataloader.augment.$name.p=1" \
        --output "$OUT/$name.png"
done
"$NECTARGAN" data preview "${common[@]}" --n 4 --seed 2 \
    $(for n in hflip vflip rot90 rotate elastic optical_distortion coarse_dropout color_jitter \
               gamma noise blur motion_blur grayscale jpeg; do
          echo --set "dataloader.augment.$n.p=0.5"; done) \
    --output "$OUT/all_p05.png"
