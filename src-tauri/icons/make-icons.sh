#!/usr/bin/env bash
# Regenerates the app and tray icons with ImageMagick (Debian's `convert`).
# Each tray state has its own shape, not just its own colour, and every icon
# has a white halo around a dark outline, so it reads on dark, light and
# high-contrast panels and for colour-blind users.
set -euo pipefail
cd "$(dirname "$0")"
C=/usr/bin/convert
body() { # $1 fill colour, $2 output, rest: extra draw args
  local fill=$1 out=$2; shift 2
  $C -size 64x64 xc:none \
    -fill none -stroke white -strokewidth 8 -draw "roundrectangle 5,5 58,58 12,12" \
    -fill "$fill" -stroke '#111111' -strokewidth 3 -draw "roundrectangle 5,5 58,58 12,12" \
    "$@" "$out"
}
G='-stroke #111111 -strokewidth 2 -fill white'
# locked: a padlock
body '#37474f' tray/locked.png \
  -fill none -stroke white -strokewidth 5 -draw "arc 21,12 43,36 180,360" \
  -stroke '#111111' -strokewidth 1 -fill white -draw "roundrectangle 17,27 47,50 3,3" \
  -fill '#111111' -stroke none -draw "circle 32,37 32,40" -draw "rectangle 31,38 33,45"
# up to date: a check mark
body '#1b5e20' tray/up_to_date.png \
  -fill none -stroke white -strokewidth 7 -draw "polyline 17,33 28,44 47,21"
# syncing: two arrows in a circle
body '#0d47a1' tray/syncing.png \
  -fill none -stroke white -strokewidth 5 -draw "arc 17,17 47,47 200,340" -draw "arc 17,17 47,47 20,160" \
  -fill white -stroke none -draw "polygon 45,14 51,28 38,26" -draw "polygon 19,50 13,36 26,38"
# paused: two bars
body '#5d4037' tray/paused.png \
  -fill white -stroke none -draw "roundrectangle 20,17 28,47 2,2" -draw "roundrectangle 36,17 44,47 2,2"
# attention: an exclamation mark on orange-red
body '#b71c1c' tray/attention.png \
  -fill white -stroke none -draw "roundrectangle 28,14 36,38 3,3" -draw "circle 32,46 32,50.5"
# The app icon: a vault door with a keyhole.
$C -size 512x512 xc:none \
  -fill '#263238' -stroke '#0b1114' -strokewidth 16 -draw "roundrectangle 24,24 488,488 80,80" \
  -fill none -stroke '#eceff1' -strokewidth 28 -draw "circle 256,256 256,110" \
  -fill '#eceff1' -stroke none -draw "circle 256,226 256,186" -draw "polygon 226,236 286,236 306,350 206,350" \
  icon.png
$C icon.png -resize 32x32 32x32.png
$C icon.png -resize 128x128 128x128.png
$C icon.png -resize 256x256 128x128@2x.png
