#!/usr/bin/env bash
# Every MEMTIDE_* variable that `memtide run --help` lists (from preload/options.def) has a row in README.md.
set -euo pipefail
memtide="$1" readme="$2"
vars=$("$memtide" run --help | grep -oE 'MEMTIDE_[A-Z][A-Z_]*' | sort -u)
for v in $vars; do
  grep -qF "| \`$v\` |" "$readme" || { echo "README.md has no row for $v"; exit 1; }
done
echo "$(echo "$vars" | wc -l) options documented"
