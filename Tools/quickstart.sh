#!/usr/bin/env bash
# The README's first command: install, build, run Workflows/quickstart.yaml, print the gallery's path.
set -euo pipefail
cd "$(dirname "$0")/.."
bash Tools/install-deps.sh
# SwiftPM's own up-to-date check takes about 7 s on two cores; skipped when the binary is newer than every
# file under Sources/, Package.swift and Package.resolved (an edit, a pull or a new Package.resolved rebuilds).
if [ -x .build/release/storyloom ] && [ -z "$(find Sources Package.swift Package.resolved -newer .build/release/storyloom -print -quit 2>/dev/null)" ]; then
  echo "storyloom (release) is up to date" >&2
else
  echo "building storyloom (release)…" >&2
  swift build -c release --product storyloom 2>&1 | grep -E "error|warning: unre|Compiling storyloom|Build complete" >&2 || true
fi
test -x .build/release/storyloom || { echo "build failed; run: swift build -c release" >&2; exit 1; }
# The StoryWorld models' products are too small to share out over threads: one batch per core, each on one
# thread, is faster than every batch on all cores (README, "Speed").
cores=$(nproc 2>/dev/null || echo 1)
.build/release/storyloom run Workflows/quickstart.yaml --jobs "$cores" --threads 1 "$@"
