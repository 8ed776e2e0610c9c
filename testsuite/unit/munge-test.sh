#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# munge-test.sh - the munge round trip of wire-test against a real munged
#
# Starts a private munged (its own key, socket, pid and log files in a new
# temporary directory; as the munge user when run as root), runs wire-test's
# "munge" case with SMIG_TEST_MUNGE_SOCKET naming its socket, and stops that
# munged by its pid on every exit. Fails when munged cannot be started,
# unless SMIG_TEST_NO_MUNGE=1 says that it cannot run here (exit 77: the
# test is reported as skipped, not passed).

set -euo pipefail

wire_test=${WIRE_TEST:-./testsuite/unit/wire-test}
dir=
pid=

say() { printf 'munge-test: %s\n' "$*" >&2; }
no_munge() {
	if [[ ${SMIG_TEST_NO_MUNGE:-} == 1 ]]; then
		say "$* (SMIG_TEST_NO_MUNGE=1: skipped)"
		exit 77
	fi
	say "$*; set SMIG_TEST_NO_MUNGE=1 only where munge cannot run"
	exit 1
}
stop() {
	local i

	if [[ -n $pid ]] && kill "$pid" 2>/dev/null; then
		for ((i = 0; i < 50; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
	fi
	[[ -z $dir ]] || rm -rf "$dir"
}
trap stop EXIT

[[ -x $wire_test ]] || { say "$wire_test: build it first"; exit 1; }
munged=$(command -v munged || echo /usr/sbin/munged)
mungekey=$(command -v mungekey || echo /usr/sbin/mungekey)
[[ -x $munged && -x $mungekey ]] || no_munge "munged or mungekey not installed"

run_as=()
if [[ $(id -u) == 0 ]]; then
	id munge >/dev/null 2>&1 || no_munge "running as root and there is no munge user"
	run_as=(runuser -u munge --)
fi
dir=$(mktemp -d "${TMPDIR:-/tmp}/smig-munge-test.XXXXXX")
chmod 0755 "$dir"	# the test (another user, when root) reaches the socket
[[ ${#run_as[@]} == 0 ]] || chown munge: "$dir"
"${run_as[@]}" "$mungekey" --create --keyfile="$dir/munge.key" ||
	no_munge "mungekey failed"
"${run_as[@]}" "$munged" --socket="$dir/munge.socket" \
	--key-file="$dir/munge.key" --pid-file="$dir/munged.pid" \
	--log-file="$dir/munged.log" --seed-file="$dir/munged.seed" ||
	no_munge "munged failed to start: $(cat "$dir/munged.log" 2>/dev/null)"
for ((i = 0; i < 50; i++)); do
	[[ -s $dir/munged.pid && -S $dir/munge.socket ]] && break
	sleep 0.1
done
pid=$(cat "$dir/munged.pid" 2>/dev/null) || true
[[ $pid =~ ^[0-9]+$ && -S $dir/munge.socket ]] ||
	no_munge "munged did not come up: $(cat "$dir/munged.log" 2>/dev/null)"
say "private munged pid $pid, socket $dir/munge.socket"
SMIG_TEST_MUNGE_SOCKET=$dir/munge.socket CK_RUN_CASE=munge "$wire_test"
