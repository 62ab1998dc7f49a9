#!/usr/bin/env bash
# Kluis vs age: file-to-file encryption and decryption of one large file on
# the same disk, run side by side in one session, interleaved round by round
# so that machine noise hits both tools alike. Prints each command's best
# and median time, the ratios, how close each comes to a plain `cp`, and
# peak RSS.
#
# The ratios use each command's median round: a round's noise on this shared
# VM (a 1 GiB write now and then takes 2-3 s instead of 0.3 s, for cp as
# much as for age or Kluis) hits one command in one round, and the median of
# the interleaved rounds ignores it. Each command's best round is printed
# beside the median, never instead of it.
# KEEP_RESULTS=FILE keeps every round's raw times.
#
# Usage: bench/format-vs-age.sh [SIZE_MIB] [ROUNDS]
#   SIZE_MIB  file size in MiB (default 1024)
#   ROUNDS    interleaved rounds (default 5)
#   KLUIS_BASE=/path/to/an/older/kluis  also runs that build in every round,
#             interleaved with this one, and prints new/old ratios (for
#             before/after figures of a change that must not regress).
#   BENCH_DIR where the files go (default: a temp dir under ./target, i.e. the
#             disk the repository is on). Use /dev/shm to take the disk out.
# Needs: age (Debian `age`), GNU time (Debian `time`), python3.
set -euo pipefail
size_mib=${1:-1024}
rounds=${2:-5}
repo=$(cd "$(dirname "$0")/.." && pwd)
command -v age >/dev/null || { echo "age is not installed (apt-get install age)"; exit 2; }
[ -x /usr/bin/time ] || { echo "GNU time is not installed (apt-get install time)"; exit 2; }

cargo build --release -q -p kluis-cli --manifest-path "$repo/Cargo.toml"
kluis="${CARGO_TARGET_DIR:-$repo/target}/release/kluis"
kluis_base=${KLUIS_BASE:-}
[ -z "$kluis_base" ] || [ -x "$kluis_base" ] || { echo "KLUIS_BASE=$kluis_base is not an executable" >&2; exit 2; }
base=${BENCH_DIR:-$repo/target}
mkdir -p "$base"
dir=$(mktemp -d -p "$base" kluis-bench.XXXXXX)
trap 'rm -rf "$dir"' EXIT
cd "$dir"

export KLUIS_HOME="$dir/home"
echo "bench passphrase" > pw
"$kluis" keygen --passphrase-file pw > kluis.pub 2>/dev/null
cp "$(find "$KLUIS_HOME" -name identity.kluiskey)" id.key
# A running, unlocked agent unwraps file keys for `kluis decrypt` (no -i):
# no passphrase and no Argon2id run, like ssh-agent.
"$kluis" --passphrase-file pw agent > agent.log 2>&1 &
agent_pid=$!
trap 'kill $agent_pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do grep -q listening agent.log && break; sleep 0.1; done
age-keygen -o age.key 2>/dev/null
age_pub=$(grep -o 'age1[0-9a-z]*' age.key | head -1)
head -c $((size_mib * 1024 * 1024)) /dev/urandom > plain.bin
head -c $((1024 * 1024)) /dev/urandom > small.bin

# time_cmd NAME CMD... : appends "NAME seconds maxrss_kib" to results.
# Each command starts with no dirty pages left over from the previous one.
time_cmd() {
  local name=$1; shift
  sync
  /usr/bin/time -f "$name %e %M" -a -o results "$@"
}

echo "Kluis $("$kluis" --version | cut -d' ' -f2) vs $(age --version) — ${size_mib} MiB, $rounds rounds, in $base"
for r in $(seq "$rounds"); do
  rm -f cp.bin age.bin age.out kluis.bin kluis.out kluis.out2
  time_cmd cp cp plain.bin cp.bin
  # Alternate which tool goes first, so neither always runs on a warmer or
  # busier disk.
  if [ $((r % 2)) -eq 1 ]; then order="age kluis base"; else order="base kluis age"; fi
  for tool in $order; do
    case $tool in
      age)
        time_cmd age-encrypt age -r "$age_pub" -o age.bin plain.bin
        time_cmd age-decrypt age -d -i age.key -o age.out age.bin
        # Replacing an existing file, made durable (age truncates in place).
        time_cmd age-encrypt-replace+fsync sh -c "age -r '$age_pub' -o age.bin plain.bin && sync age.bin" ;;
      kluis)
        time_cmd kluis-encrypt "$kluis" encrypt -r "$(cat kluis.pub)" -o kluis.bin plain.bin
        time_cmd kluis-decrypt "$kluis" decrypt -i id.key --passphrase-file pw -o kluis.out kluis.bin
        time_cmd kluis-decrypt-agent "$kluis" decrypt -o kluis.out2 kluis.bin
        # Replacing an existing file: kluis fsyncs before the rename.
        time_cmd kluis-encrypt-replace "$kluis" encrypt -r "$(cat kluis.pub)" -o kluis.bin plain.bin
        # Unlocking the identity alone (Argon2id, 64 MiB): part of every
        # kluis decrypt; age's identity file is not password-protected.
        time_cmd kluis-unlock sh -c "'$kluis' recipient -i id.key --passphrase-file pw > /dev/null" ;;
      base)
        [ -n "$kluis_base" ] || continue
        rm -f base.bin base.out
        time_cmd base-encrypt "$kluis_base" encrypt -r "$(cat kluis.pub)" -o base.bin plain.bin
        time_cmd base-decrypt "$kluis_base" decrypt -i id.key --passphrase-file pw -o base.out base.bin
        cmp -s plain.bin base.out || { echo "older kluis round trip differs!"; exit 1; }
        rm -f base.out ;;
    esac
  done
  cmp -s plain.bin kluis.out || { echo "kluis round trip differs!"; exit 1; }
  cmp -s plain.bin kluis.out2 || { echo "kluis round trip (agent) differs!"; exit 1; }
  rm -f kluis.out2
  cmp -s plain.bin age.out || { echo "age round trip differs!"; exit 1; }
  echo "  round $r done"
done
# Memory is flat: the same peak for a 1 MiB file as for the large one.
time_cmd kluis-encrypt-1MiB "$kluis" encrypt -r "$(cat kluis.pub)" -o small.kluis small.bin
time_cmd kluis-decrypt-1MiB "$kluis" decrypt -i id.key --passphrase-file pw -o small.out small.kluis
time_cmd kluis-stream-encrypt sh -c "'$kluis' encrypt -r '$(cat kluis.pub)' < plain.bin > stream.kluis"
time_cmd kluis-stream-decrypt sh -c "'$kluis' decrypt -i id.key --passphrase-file pw < stream.kluis > stream.out"
cmp -s plain.bin stream.out || { echo "kluis streaming round trip differs!"; exit 1; }

cp results "${KEEP_RESULTS:-/dev/null}"
python3 - "$size_mib" <<'PY'
import statistics, sys
size = int(sys.argv[1]) * 1024 * 1024
runs = {}
for line in open("results"):
    parts = line.split()
    if len(parts) != 3 or parts[0].startswith("Command"):
        continue
    runs.setdefault(parts[0], []).append((float(parts[1]), int(parts[2])))
def med(name): return statistics.median(t for t, _ in runs[name])
def best(name): return min(t for t, _ in runs[name])
def rss(name): return max(m for _, m in runs[name])
def mbps(name): return size / med(name) / 1e6
print()
print(f"{'':26}{'median s':>10}{'best s':>8}{'MB/s':>8}{'peak RSS':>12}   (MB/s of the median)")
for name in ["cp", "age-encrypt", "kluis-encrypt", "age-encrypt-replace+fsync", "kluis-encrypt-replace", "age-decrypt", "kluis-decrypt",
             "kluis-decrypt-agent", "kluis-unlock", "kluis-stream-encrypt", "kluis-stream-decrypt"]:
    print(f"{name:26}{med(name):10.2f}{best(name):8.2f}{mbps(name):8.0f}{rss(name)/1024:10.1f} MiB")
for name in ["kluis-encrypt-1MiB", "kluis-decrypt-1MiB"]:
    print(f"{name:26}{'':26}{rss(name)/1024:10.1f} MiB")
print()
def ratio(a, k): return f"{med(a)/med(k):.2f}x (best rounds: {best(a)/best(k):.2f}x)"
unlock = med("kluis-unlock")
print(f"encrypt: kluis/age throughput ratio {ratio('age-encrypt', 'kluis-encrypt')} (new output file)")
print(f"encrypt replacing an existing file, both made durable: {ratio('age-encrypt-replace+fsync', 'kluis-encrypt-replace')}")
print(f"decrypt: kluis/age throughput ratio {ratio('age-decrypt', 'kluis-decrypt')} (kluis includes {unlock:.2f} s to unlock its password-protected identity;"
      f" without it {med('age-decrypt')/(med('kluis-decrypt')-unlock):.2f}x)")
print(f"decrypt through the running agent (no passphrase, no Argon2id): {ratio('age-decrypt', 'kluis-decrypt-agent')}, "
      f"peak RSS {rss('kluis-decrypt-agent')/1024:.1f} MiB")
print(f"age vs cp (medians): encrypt at {med('cp')/med('age-encrypt')*100:.0f}% of cp speed, decrypt at {med('cp')/med('age-decrypt')*100:.0f}%"
      f" (no file-to-file tool can beat cp, so 2x age is possible only where age runs below 50% of cp)")
print(f"kluis vs cp (medians): encrypt at {med('cp')/med('kluis-encrypt')*100:.0f}% of cp speed, decrypt at {med('cp')/med('kluis-decrypt')*100:.0f}%")
if "base-encrypt" in runs:
    print(f"this build vs KLUIS_BASE (median time old/new, >1 means faster now): "
          f"encrypt {med('base-encrypt')/med('kluis-encrypt'):.2f}x ({med('base-encrypt'):.2f} s -> {med('kluis-encrypt'):.2f} s), "
          f"decrypt {med('base-decrypt')/med('kluis-decrypt'):.2f}x ({med('base-decrypt'):.2f} s -> {med('kluis-decrypt'):.2f} s); "
          f"peak RSS {rss('base-encrypt')/1024:.1f} -> {rss('kluis-encrypt')/1024:.1f} MiB (encrypt)")
print(f"peak RSS: encrypt {rss('kluis-encrypt')/1024:.1f} MiB; decrypt {rss('kluis-decrypt')/1024:.1f} MiB, "
      f"of which 64 MiB is the Argon2id working memory that unlocking the identity file requires "
      f"(decrypting 1 MiB peaks at {rss('kluis-decrypt-1MiB')/1024:.1f} MiB too: memory does not grow with the file)")
PY
