/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuzz_wire.c - libFuzzer harness for smig_wire_decode()
 *
 * The input is a byte stream as the balancer reads it from a socket: frames
 * are decoded from its front until the stream is refused or needs more
 * bytes. Authentication is the "none" method (a uid/gid prefix), so the
 * fuzzer reaches the GVariant body; every typed field lookup the balancer
 * and the agents make, and the schema check (smig_msgs_check()), are
 * exercised on each decoded message.
 */
#include "smig_config.h"

#include <stddef.h>
#include <stdint.h>
#include <glib.h>

#include "smig_auth.h"
#include "smig_msgs.h"
#include "smig_wire.h"
#include "fuzz_common.h"

static const char *const keys[] = {
	"job", "step", "request", "ntasks", "alloc_nodes", "alloc_cpus",
	"cpus_per_task", "restored_gen", "prev_step", "node", "ranks", "gen",
	"timeout_ms", "rank", "pause_at", "target", "status", "bytes", "msg",
	"reason", "hostfile", "stop", "what",
};

static void poke(const smig_msg_t *msg)
{
	for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
		uint32_t u32, *arr = NULL;
		uint64_t u64;
		int32_t i32;
		bool b;
		const char *s;
		size_t n;

		(void) smig_msg_get_u32(msg, keys[i], &u32);
		(void) smig_msg_get_u64(msg, keys[i], &u64);
		(void) smig_msg_get_i32(msg, keys[i], &i32);
		(void) smig_msg_get_bool(msg, keys[i], &b);
		if (smig_msg_get_str(msg, keys[i], &s))
			(void) strlen(s);
		if (smig_msg_get_u32_array(msg, keys[i], &arr, &n)) {
			for (size_t k = 0; k < n; k++)
				u32 ^= arr[k];
			g_free(arr);
		}
	}
	(void) smig_msg_type_name(msg->type);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static smig_auth_t *auth;
	size_t off = 0;

	if (!auth) {
		fuzz_quiet();
		auth = smig_auth_none_new(1000, 1000);
	}
	while (off < size) {
		GError *err = NULL;
		size_t consumed = 0;
		smig_msg_t *msg;
		GBytes *again;

		msg = smig_wire_decode(auth, data + off, size - off, &consumed,
				       &err);
		if (!msg) {
			/* Refused or incomplete: nothing may be consumed. */
			if (consumed != 0)
				abort();
			g_clear_error(&err);
			break;
		}
		if (consumed == 0 || consumed > size - off)
			abort();
		poke(msg);
		/* The schema check every receiver runs: passes or refuses. */
		if (!smig_msgs_check(msg, &err))
			g_clear_error(&err);
		/* What was accepted must encode again. */
		again = smig_wire_encode(auth, msg, &err);
		if (!again)
			abort();
		g_bytes_unref(again);
		smig_msg_free(msg);
		off += consumed;
	}
	return 0;
}
