/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_state.h - the balancer's durable state file
 *
 * One file, <MigrateStateDir>/balancer.state, written atomically (temporary
 * name, fsync, rename, fsync of the directory) whenever something that must
 * survive a restart of the balancer's host changes. Layout (doc/design.md,
 * "The balancer's state file"):
 *
 *   0  8 bytes  magic "SMIGSTAT"
 *   8  u32 LE   format version (SMIG_STATE_VERSION)
 *  12  u32 LE   0
 *  16  u64 LE   body length
 *  24  32 bytes SHA-256 of the body
 *  56  body     GVariant a{sv}, little-endian serialization
 *
 * The body's keys are the balancer's business (smig_balancer.c); this module
 * only stores and checks bytes. A reader ignores keys it does not know, so a
 * new key never needs a new version.
 */
#ifndef SMIG_STATE_H
#define SMIG_STATE_H

#include <stdbool.h>
#include <glib.h>

#define SMIG_STATE_VERSION	1
#define SMIG_STATE_FILE		"balancer.state"
#define SMIG_STATE_MAX		(256u << 20)	/* bytes of body, at most */

/*
 * smig_state_check_dir - the state directory exists and is a directory
 * IN  dir   - MigrateStateDir (borrowed)
 * OUT error - names MigrateStateDir, the path and the reason; caller frees
 * RET false with error set otherwise
 */
bool smig_state_check_dir(const char *dir, GError **error);

/*
 * smig_state_save - write state as dir/balancer.state, atomically
 * IN  dir   - existing directory (borrowed)
 * IN  state - a{sv} (borrowed; a floating reference is sunk and dropped)
 * OUT error - set on failure (path and system error); caller frees
 * RET false with error set; the previous file is then left as it was
 */
bool smig_state_save(const char *dir, GVariant *state, GError **error);

/*
 * smig_state_load - read and check dir/balancer.state
 * IN  dir   - state directory (borrowed)
 * OUT state - on success the a{sv} of the file, caller g_variant_unref()s;
 *             NULL when there is no file (a first start)
 * OUT error - set when the file is unreadable, truncated, of another
 *             format or version, or fails its checksum: the message names
 *             the file and the reason, and where the bad file was kept
 *             (renamed to balancer.state.bad-<unix time>); caller frees
 * RET false with error set on a bad file, true otherwise
 */
bool smig_state_load(const char *dir, GVariant **state, GError **error);

#endif /* SMIG_STATE_H */
