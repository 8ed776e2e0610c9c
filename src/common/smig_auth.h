/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_auth.h - seal and open message payloads with a credential
 *
 * Production uses munge: the payload travels inside a munge credential, so
 * the receiver learns the sender's uid/gid from munged, the payload cannot be
 * altered, and munged refuses a credential it has already decoded (replay).
 * The "none" method exists for unit tests and fuzzing only: it trusts the
 * uid/gid it was created with and proves nothing.
 */
#ifndef SMIG_AUTH_H
#define SMIG_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <glib.h>

typedef struct smig_auth smig_auth_t;

/*
 * smig_auth_munge_new - credentials from munged
 * IN  socket - munged's socket, NULL for munge's default (borrowed)
 * OUT error  - set on failure; caller frees with g_error_free()
 * RET new context, caller frees with smig_auth_free(); NULL on error
 */
smig_auth_t *smig_auth_munge_new(const char *socket, GError **error);

/*
 * smig_auth_none_new - NO SECURITY: unit tests and fuzzers only.
 * Sealed tokens are the payload prefixed with uid and gid.
 * RET new context, caller frees with smig_auth_free()
 */
smig_auth_t *smig_auth_none_new(uint32_t uid, uint32_t gid);

/* smig_auth_free - free a context; NULL is a no-op */
void smig_auth_free(smig_auth_t *auth);

/*
 * smig_auth_seal - wrap a payload in a credential of the calling process
 * IN  payload, len - bytes to protect (borrowed)
 * RET new token, caller frees with g_bytes_unref(); NULL on error
 * Thread-safe.
 */
GBytes *smig_auth_seal(smig_auth_t *auth, const void *payload, size_t len,
		       GError **error);

/*
 * smig_auth_open - verify a token and return its payload and sender
 * IN  token, len - bytes received (borrowed; not trusted)
 * OUT uid, gid   - the authenticated sender
 * OUT error      - invalid, expired, replayed: SMIG_ERROR_AUTH
 * RET new payload, caller frees with g_bytes_unref(); NULL on error
 * Thread-safe.
 */
GBytes *smig_auth_open(smig_auth_t *auth, const void *token, size_t len,
		       uint32_t *uid, uint32_t *gid, GError **error);

#endif /* SMIG_AUTH_H */
