#!/usr/bin/env bash
# Runs the ```sh blocks of README.md's "On a fresh machine" section as they are
# written, in order, from the repository's root, so that the commands a new user reads
# are the commands CI runs. The first block must print what the README says it prints.
set -euo pipefail
cd "$(dirname "$0")/.."
blocks=$(python3 - <<'PY'
import json, re
text = open("README.md").read()
section = text.split("## On a fresh machine", 1)[1].split("\n## ", 1)[0]
print(json.dumps(re.findall(r"```sh\n(.*?)```", section, re.S)))
PY
)
count=$(python3 -c 'import json,sys; print(len(json.loads(sys.argv[1])))' "$blocks")
[ "$count" -ge 2 ] || { echo "readme-commands: expected 2 sh blocks, found $count" >&2; exit 1; }
for i in $(seq 0 $((count - 1))); do
  block=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])[int(sys.argv[2])])' "$blocks" "$i")
  echo "readme-commands: block $((i + 1)) of $count:" >&2
  printf '%s\n' "$block" | sed 's/^/  | /' >&2
  if [ "$i" = 0 ]; then
    out=$(bash -euo pipefail -c "$block")
    printf '%s\n' "$out"
    grep -qx 'reproducible, bit for bit' <<<"$out" || {
      echo "readme-commands: the example did not print 'reproducible, bit for bit'" >&2
      exit 1
    }
  else
    bash -euo pipefail -c "$block"
  fi
done
