#!/usr/bin/env bash
# The checks every change must pass, locally and in CI: formatting, vet,
# a tidy go.mod, and the README's test command.
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

echo "== go mod tidy"
go mod tidy -diff

echo "== actionlint"
go run github.com/rhysd/actionlint/cmd/actionlint@v1.7.7 .github/workflows/*.yml

echo "== go test"
go test -count=1 ./...
