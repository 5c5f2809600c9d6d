#!/bin/sh
# Cross-compiles vigil-agent for every supported target, stripped, and
# fails when a binary is larger than the budget (7 MB = 7000000 bytes) or
# links anything but the standard library, agent/... and wire.
#
# Usage: agent/crosscheck.sh [OUTDIR]   (run from the repository root)
# Prints one line per target: target, size in bytes.
set -eu
out=${1:-$(mktemp -d)}
max=${VIGIL_AGENT_MAX_BYTES:-7000000}
mkdir -p "$out"
fail=0
for t in linux/amd64 linux/arm64 linux/arm/5 linux/arm/7 linux/mips/softfloat linux/mipsle/softfloat linux/riscv64; do
	os=${t%%/*}; rest=${t#*/}; arch=${rest%%/*}; variant=
	[ "$rest" != "$arch" ] && variant=${rest#*/}
	goarm=; gomips=; gcflags=
	case $arch in
	arm) goarm=$variant ;;
	# MIPS devices (routers, gateways) are the ones short of flash: their
	# agent is built for size, with inlining off (-0.65 MB, docs/agent.md).
	mips|mipsle) gomips=$variant; gcflags=all=-l ;;
	esac
	bin="$out/vigil-agent-$os-$arch${variant:+-$variant}"
	GOOS=$os GOARCH=$arch GOARM=$goarm GOMIPS=$gomips CGO_ENABLED=0 \
		go build -trimpath -gcflags="$gcflags" -ldflags="-s -w" -o "$bin" ./cmd/vigil-agent
	size=$(wc -c <"$bin" | tr -d ' ')
	status=ok
	if [ "$size" -gt "$max" ]; then status="TOO LARGE (max $max)"; fail=1; fi
	printf '%-24s %9d  %s\n' "$t" "$size" "$status"
done
extra=$(go list -deps -f '{{if not .Standard}}{{.ImportPath}}{{end}}' ./cmd/vigil-agent |
	grep -v -E '^github.com/vigil-iot/vigil/(wire|agent(/.*)?|cmd/vigil-agent)$' || true)
if [ -n "$extra" ]; then
	echo "vigil-agent links non-agent packages:"; echo "$extra"; fail=1
fi
exit $fail
