#!/usr/bin/env bash
# The checks every change must pass, locally and in CI: formatting, vet,
# staticcheck, a tidy go.mod, render and plan free of I/O, the README's
# test command, and the race detector over the packages that need no
# real hosts.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== gofmt"
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
	echo "gofmt needed on:" >&2
	echo "$unformatted" >&2
	exit 1
fi

echo "== go vet"
go vet ./...

echo "== staticcheck"
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

echo "== go mod tidy"
go mod tidy -diff

echo "== render and plan do no I/O"
# Data flows one way: layout -> render -> plan -> apply. Render and plan
# take values and return values; they never reach a host.
for pkg in ./internal/render ./internal/plan ./internal/state; do
	impure=$(go list -deps "$pkg" | grep -E '/internal/(transport|apply|onhost|fleet)(/|$)' || true)
	if [ -n "$impure" ]; then
		echo "$pkg depends on $(echo $impure | tr ' ' ','): render, plan and state must do no I/O" >&2
		exit 1
	fi
done

echo "== actionlint"
go run github.com/rhysd/actionlint/cmd/actionlint@v1.7.7 .github/workflows/*.yml

echo "== go test"
# The README's go test ./..., in two runs: the end-to-end tests (real
# hosts in network namespaces, real Cyrus) alone, so that their load does
# not starve the unit tests' loopback servers of their deadlines.
go test -count=1 $(go list ./... | grep -v -E '/internal/e2e$')
go test -count=1 -timeout 25m ./internal/e2e

echo "== go test -race (the packages that need no real hosts)"
go test -count=1 -race $(go list ./... | grep -v -E '/internal/(e2e|testhosts)(/|$)')
