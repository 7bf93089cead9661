#!/usr/bin/env bash
# Side by side: what reading a fleet costs with Ansible and with cyrplan.
#
#   scripts/ansible-compare.sh [HOSTS [SLOTS_PER_HOST]]     (default 32 8)
#
# Builds HOSTS simulated hosts (internal/testhosts: network namespaces, a
# real OpenSSH sshd each), generates a layout of SLOTS_PER_HOST slots per
# host for them (fleetgen), puts its files on the hosts (fleetgen
# populate: cyrplan's apply code, no command run), then in one run:
#   1. ansible-playbook --check --diff of scripts/ansible/play.yml, which
#      templates the same rendered files (secrets filled in, as on the
#      hosts) with forks = HOSTS and pipelining;
#   2. cyrplan plan --parallelism HOSTS of the same layout, 5 times (the
#      ratio is to the median).
# Both must find no change. Prints both times and the ratio. Needs root;
# installs Debian's ansible if it is missing. The hosts are always torn
# down.
set -euo pipefail
cd "$(dirname "$0")/.."

hosts=${1:-32}
slots=${2:-8}
if [ "$(id -u)" != 0 ]; then
	echo "ansible-compare: must run as root (simulated hosts are namespaces)" >&2
	exit 1
fi
if ! command -v ansible-playbook >/dev/null; then
	while pgrep -x apt-get >/dev/null || pgrep -x dpkg >/dev/null; do
		echo "ansible-compare: waiting for another apt-get/dpkg to finish" >&2
		sleep 5
	done
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -q ansible || { apt-get update -q && apt-get install -y -q ansible; }
fi

work=$(mktemp -d /tmp/cyrplan-ansible-compare.XXXXXX)
state=$work/hosts
cleanup() {
	if [ -d "$state" ] && [ -x "$work/testhosts" ]; then
		"$work/testhosts" --state "$state" down || echo "ansible-compare: teardown failed; run: testhosts --state $state down" >&2
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== build"
go build -o "$work/cyrplan" ./cmd/cyrplan
go build -o "$work/testhosts" ./internal/testhosts/cmd/testhosts
go build -o "$work/fleetgen" ./internal/fleetgen/cmd/fleetgen

echo "== $hosts hosts, $slots slots each"
"$work/testhosts" --state "$state" up "$hosts" >"$work/hosts.json"
known=$state/known_hosts
identity=$state/id_ed25519
# Both builds at the installed Cyrus: plan checks each host has them.
"$work/fleetgen" layout -testhosts "$work/hosts.json" -slots "$slots" -out "$work/layout" \
	-prefix /usr/lib/cyrus -pinned-prefix /usr/lib/cyrus
export CYRPLAN_SECRET_REPLICATION=compare-repl-pw
"$work/fleetgen" populate -layout "$work/layout" -known-hosts "$known" -identity "$identity"
"$work/fleetgen" ansible -layout "$work/layout" -out "$work/ansible" -known-hosts "$known" -identity "$identity"
nfiles=$(find "$work/ansible/files" -type f | wc -l)

now() { date +%s.%N; }

echo "== ansible-playbook --check --diff ($(ansible-playbook --version | head -1), forks $hosts, pipelining, $nfiles files)"
export ANSIBLE_FORKS=$hosts ANSIBLE_PIPELINING=True ANSIBLE_HOST_KEY_CHECKING=True ANSIBLE_RETRY_FILES_ENABLED=False \
	ANSIBLE_LOCAL_TEMP=$work/ansible-tmp ANSIBLE_SSH_CONTROL_PATH_DIR=$work/ansible-cp
t0=$(now)
if ! ansible-playbook -i "$work/ansible/inventory.ini" --check --diff scripts/ansible/play.yml >"$work/ansible.log" 2>&1; then
	tail -50 "$work/ansible.log" >&2
	echo "ansible-compare: ansible-playbook failed" >&2
	exit 1
fi
t1=$(now)
recap=$(sed -n '/PLAY RECAP/,$p' "$work/ansible.log")
if echo "$recap" | grep -Eq 'changed=[1-9]|unreachable=[1-9]|failed=[1-9]'; then
	echo "$recap" >&2
	echo "ansible-compare: Ansible found changes or failures; the comparison needs a fleet with none" >&2
	exit 1
fi
echo "$recap" | tail -3

# cyrplan is run 5 times: the first run (right after Ansible) and the
# median are printed; the ratio is to the median.
echo "== cyrplan plan (parallelism $hosts), 5 runs"
times=()
for run in 1 2 3 4 5; do
	t2=$(now)
	rc=0
	"$work/cyrplan" plan --detailed-exitcode --parallelism "$hosts" --layout "$work/layout" \
		--known-hosts "$known" --identity "$identity" >"$work/cyrplan.log" 2>&1 || rc=$?
	t3=$(now)
	if [ "$rc" != 0 ]; then
		cat "$work/cyrplan.log" >&2
		echo "ansible-compare: cyrplan plan exited $rc, want 0 (no change)" >&2
		exit 1
	fi
	times+=("$(awk -v c0="$t2" -v c1="$t3" 'BEGIN { print c1 - c0 }')")
done
tail -2 "$work/cyrplan.log"

printf '%s\n' "${times[@]}" | sort -n | awk -v a0="$t0" -v a1="$t1" -v h="$hosts" -v s="$slots" -v f="$nfiles" -v first="${times[0]}" '
	{ c[NR] = $1 }
	END {
		n = NR
		med = c[int((n + 1) / 2)]
		a = a1 - a0
		printf "\n%d hosts, %d slots, %d files, no change:\n", h, h * s, f
		printf "  ansible-playbook --check --diff  %8.2f s\n", a
		printf "  cyrplan plan, median of %d       %8.2f s (first run %.2f s)\n", n, med, first
		printf "  ratio                            %8.0fx\n", a / med
	}'
