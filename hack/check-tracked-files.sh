#!/usr/bin/env bash
# Fails when git tracks a build output: an executable binary (ELF, Mach-O, PE), or any file over
# 1 MB outside a testdata/ directory. Run by `make test`, so CI on a fresh clone refuses them.
set -euo pipefail
cd "$(dirname "$0")/.."
limit=$((1024 * 1024))
bad=()
while IFS= read -r -d '' f; do
  [[ -f "$f" ]] || continue
  size=$(stat -c %s "$f")
  if [[ "$size" -gt "$limit" && "$f" != */testdata/* && "$f" != testdata/* ]]; then
    bad+=("$f: $size bytes, over 1 MB")
    continue
  fi
  # The first bytes tell a compiled binary: ELF, Mach-O (32/64-bit, both byte orders, fat) or PE.
  magic=$(head -c 4 "$f" | od -An -tx1 | tr -d ' \n')
  case "$magic" in
    7f454c46 | feedface | feedfacf | cefaedfe | cffaedfe | cafebabe | 4d5a*)
      bad+=("$f: a compiled binary") ;;
  esac
done < <(git ls-files -z)
if [[ ${#bad[@]} -gt 0 ]]; then
  echo "git tracks build outputs; remove them (git rm --cached) and ignore them in .gitignore:" >&2
  printf '  %s\n' "${bad[@]}" >&2
  exit 1
fi
