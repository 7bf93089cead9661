#!/usr/bin/env bash
# cyrplan's benchmarks (see BENCHMARKS.md):
#   1. go test -bench over the packages with benchmarks: layout load
#      (validate), render, plan, apply, and the CLI in-process with the
#      local transport at 100, 1,000 and 10,000 slots and over real sshd
#      at 8, 16 and 32 hosts (these need root, openssh-server and Cyrus,
#      and skip otherwise);
#   2. the cyrplan binary on generated fleets of 100, 1,000 and 10,000
#      slots (--root hosts): wall time and peak resident memory of
#      validate, render --out, the first apply, a no-change plan and a
#      no-op apply, measured by "fleetgen measure" (ru_maxrss).
#
#   3. floors: each figure next to its physical floor, measured in the
#      same run, with the ratio: a no-change plan of 32 real sshd hosts
#      x 8 slots (CYRPLAN_BENCH_SSH_HOSTS=32,64,88: of each size) against
#      one hash command per host, the two one after the other in every
#      iteration (BenchmarkSSH/plan-vs-floor), and layout.Load of
#      10,000 slots against load + unify + validate alone
#      (BenchmarkFloor; by turns, BenchmarkLoadVsFloor), and a first
#      apply --root of 10,000 slots against
#      making the same directories and files with plain os calls
#      (BenchmarkLocal/apply-first-floor).
#
#   scripts/bench.sh [go|binary|floors|all]     (default all)
#
# BENCHTIME (default 1x; e.g. 5x) and BENCH (default .) go to go test.
set -euo pipefail
cd "$(dirname "$0")/.."

what=${1:-all}
benchtime=${BENCHTIME:-1x}
bench=${BENCH:-.}

echo "== machine"
echo "cores: $(nproc); kernel: $(uname -r); $(go version)"
free -h | sed -n 1,2p
echo "load: $(cat /proc/loadavg)"

if [ "$what" = go ] || [ "$what" = all ]; then
	echo "== go test -bench $bench -benchtime $benchtime"
	go test -run '^$' -bench "$bench" -benchmem -benchtime="$benchtime" -timeout 60m \
		./internal/layout ./internal/render ./internal/plan ./internal/apply ./internal/e2e
fi

if [ "$what" = floors ] || [ "$what" = all ]; then
	echo "== floors (BENCHTIME $benchtime; ratio = figure / floor, same run)"
	{
		CYRPLAN_BENCH_SSH_HOSTS=${CYRPLAN_BENCH_SSH_HOSTS:-32} \
			go test -run '^$' -bench 'SSH/[0-9]+hosts/plan-vs-floor$' -benchtime="$benchtime" -timeout 60m ./internal/e2e
		go test -run '^$' -bench '^Benchmark(Load|Floor|LoadVsFloor)$/10000' -benchmem -benchtime="$benchtime" ./internal/layout
		go test -run '^$' -bench 'Local/10000slots/apply-first(-floor)?$' -benchtime="$benchtime" -timeout 60m ./internal/e2e
	} | tee /dev/stderr | awk '
		/^Benchmark/ { name = $1; sub(/-[0-9]+$/, "", name); ns[name] = $3 }
		/^BenchmarkSSH\/[0-9]+hosts\/plan-vs-floor/ {
			for (i = 3; i < NF; i += 2) m[$(i + 1)] = $i
			printf "ratio %s: %.2fx (plan %.3f s / floor %.3f s, in turn)\n", name, m["x-floor"], m["plan-s/op"], m["floor-s/op"]
		}
		/^BenchmarkLoadVsFloor\// {
			for (i = 3; i < NF; i += 2) m[$(i + 1)] = $i
			printf "ratio %s: %.2fx (load %.3f s / floor %.3f s, in turn)\n", name, m["load/floor"], m["load-ns/op"] / 1e9, m["floor-ns/op"] / 1e9
		}
		END {
			pairs["BenchmarkLoad/10000slots"] = "BenchmarkFloor/10000slots"
			pairs["BenchmarkLocal/10000slots/apply-first"] = "BenchmarkLocal/10000slots/apply-first-floor"
			for (f in pairs) if ((f in ns) && (pairs[f] in ns))
				printf "ratio %s / %s: %.2fx (%.3f s / %.3f s)\n", f, pairs[f], ns[f] / ns[pairs[f]], ns[f] / 1e9, ns[pairs[f]] / 1e9
		}'
fi

if [ "$what" = binary ] || [ "$what" = all ]; then
	work=$(mktemp -d /tmp/cyrplan-bench.XXXXXX)
	trap 'rm -rf "$work"' EXIT
	go build -o "$work/cyrplan" ./cmd/cyrplan
	go build -o "$work/fleetgen" ./internal/fleetgen/cmd/fleetgen
	export CYRPLAN_SECRET_REPLICATION=bench-repl-pw
	measure() {
		local label=$1
		shift
		"$work/fleetgen" measure -label "$label" -- "$work/cyrplan" "$@" >"$work/out" 2>"$work/err" || {
			cat "$work/out" "$work/err" >&2
			echo "bench: cyrplan $* failed" >&2
			exit 1
		}
		grep '^measure:' "$work/err"
	}
	for size in 10x10 20x50 125x80; do
		h=${size%x*} s=${size#*x}
		dir=$work/$size
		echo "== binary, $h hosts x $s slots = $((h * s)) slots"
		"$work/fleetgen" layout -hosts "$h" -slots "$s" -out "$dir/layout" >/dev/null
		measure "validate $((h * s))" validate --layout "$dir/layout"
		measure "render --out $((h * s)) (new dir)" render --layout "$dir/layout" --out "$dir/tree"
		measure "render --out $((h * s)) (again)" render --layout "$dir/layout" --out "$dir/tree"
		measure "apply first $((h * s))" apply --auto-approve --root "$dir/root" --layout "$dir/layout"
		measure "plan no-change $((h * s))" plan --detailed-exitcode --root "$dir/root" --layout "$dir/layout"
		measure "apply no-op $((h * s))" apply --auto-approve --root "$dir/root" --layout "$dir/layout"
		rm -rf "$dir"
	done
fi
