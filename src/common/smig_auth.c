/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_auth.c - seal and open message payloads with munge credentials
 */
#include "smig_config.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>
#include <munge.h>

#include "smig_auth.h"
#include "smig_error.h"

/* "none" tokens: big-endian uid and gid, then the payload. */
#define NONE_PREFIX 8

typedef enum {
	AUTH_MUNGE,
	AUTH_NONE,
} auth_method_t;

struct smig_auth {
	auth_method_t method;
	munge_ctx_t munge;	/* template; each call works on a copy */
	uint32_t uid;		/* "none" only */
	uint32_t gid;
};

/*
 * smig_auth_munge_new - credentials from munged
 * IN  socket - munged's socket, NULL for munge's default (borrowed)
 * OUT error  - set on failure; caller frees with g_error_free()
 * RET new context, caller frees with smig_auth_free(); NULL on error
 */
smig_auth_t *smig_auth_munge_new(const char *socket, GError **error)
{
	smig_auth_t *auth;
	munge_ctx_t ctx;
	munge_err_t e;

	if (!(ctx = munge_ctx_create())) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_AUTH,
			    "munge_ctx_create failed (out of memory)");
		return NULL;
	}
	if (socket && (e = munge_ctx_set(ctx, MUNGE_OPT_SOCKET, socket)) !=
		      EMUNGE_SUCCESS) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_AUTH,
			    "munge socket %s: %s", socket, munge_strerror(e));
		munge_ctx_destroy(ctx);
		return NULL;
	}
	auth = g_new0(smig_auth_t, 1);
	auth->method = AUTH_MUNGE;
	auth->munge = ctx;
	return auth;
}

/*
 * smig_auth_none_new - NO SECURITY: unit tests and fuzzers only
 * RET new context, caller frees with smig_auth_free()
 */
smig_auth_t *smig_auth_none_new(uint32_t uid, uint32_t gid)
{
	smig_auth_t *auth = g_new0(smig_auth_t, 1);

	auth->method = AUTH_NONE;
	auth->uid = uid;
	auth->gid = gid;
	return auth;
}

/* smig_auth_free - free a context; NULL is a no-op */
void smig_auth_free(smig_auth_t *auth)
{
	if (!auth)
		return;
	if (auth->munge)
		munge_ctx_destroy(auth->munge);
	g_free(auth);
}

/* munge's own text, with the context's detail when it says more. */
static void set_munge_error(GError **error, const char *what, munge_err_t e,
			    munge_ctx_t ctx)
{
	const char *detail = ctx ? munge_ctx_strerror(ctx) : NULL;

	if (detail && strcmp(detail, munge_strerror(e)))
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_AUTH,
			    "%s: %s (%s)", what, munge_strerror(e), detail);
	else
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_AUTH, "%s: %s",
			    what, munge_strerror(e));
}

/*
 * smig_auth_seal - wrap a payload in a credential of the calling process
 * IN  payload, len - bytes to protect (borrowed)
 * OUT error        - munged unreachable etc.: SMIG_ERROR_AUTH
 * RET new token, caller frees with g_bytes_unref(); NULL on error
 * Thread-safe: each call uses its own copy of the munge context.
 */
GBytes *smig_auth_seal(smig_auth_t *auth, const void *payload, size_t len,
		       GError **error)
{
	munge_ctx_t ctx;
	munge_err_t e;
	char *cred = NULL;
	GBytes *token;

	if (auth->method == AUTH_NONE) {
		uint8_t *buf = g_malloc(NONE_PREFIX + len);
		uint32_t be;

		be = GUINT32_TO_BE(auth->uid);
		memcpy(buf, &be, 4);
		be = GUINT32_TO_BE(auth->gid);
		memcpy(buf + 4, &be, 4);
		if (len)
			memcpy(buf + NONE_PREFIX, payload, len);
		return g_bytes_new_take(buf, NONE_PREFIX + len);
	}

	if (len > INT_MAX) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_AUTH,
			    "payload of %zu bytes is too large for munge", len);
		return NULL;
	}
	if (!(ctx = munge_ctx_copy(auth->munge))) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_AUTH,
			    "munge_ctx_copy failed (out of memory)");
		return NULL;
	}
	e = munge_encode(&cred, ctx, len ? payload : NULL, (int) len);
	if (e != EMUNGE_SUCCESS) {
		set_munge_error(error, "cannot create munge credential", e,
				ctx);
		free(cred);
		munge_ctx_destroy(ctx);
		return NULL;
	}
	/* The NUL is not sent: the receiver knows the length. */
	token = g_bytes_new(cred, strlen(cred));
	free(cred);
	munge_ctx_destroy(ctx);
	return token;
}

/*
 * smig_auth_open - verify a token and return its payload and sender
 * IN  token, len - bytes received (borrowed; not trusted)
 * OUT uid, gid   - the authenticated sender
 * OUT error      - invalid, expired, replayed: SMIG_ERROR_AUTH
 * RET new payload, caller frees with g_bytes_unref(); NULL on error
 * Thread-safe: each call uses its own copy of the munge context.
 */
GBytes *smig_auth_open(smig_auth_t *auth, const void *token, size_t len,
		       uint32_t *uid, uint32_t *gid, GError **error)
{
	munge_ctx_t ctx;
	munge_err_t e;
	void *payload = NULL;
	int plen = 0;
	uid_t cred_uid;
	gid_t cred_gid;
	char *cred;
	GBytes *out = NULL;

	if (auth->method == AUTH_NONE) {
		uint32_t be;

		if (len < NONE_PREFIX) {
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_AUTH,
				    "token too short (%zu bytes, at least %d)",
				    len, NONE_PREFIX);
			return NULL;
		}
		memcpy(&be, token, 4);
		*uid = GUINT32_FROM_BE(be);
		memcpy(&be, (const uint8_t *) token + 4, 4);
		*gid = GUINT32_FROM_BE(be);
		return g_bytes_new((const uint8_t *) token + NONE_PREFIX,
				   len - NONE_PREFIX);
	}

	if (len == 0 || memchr(token, '\0', len)) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_AUTH,
			    "not a munge credential (%s)",
			    len ? "contains a NUL byte" : "empty");
		return NULL;
	}
	if (!(ctx = munge_ctx_copy(auth->munge))) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_AUTH,
			    "munge_ctx_copy failed (out of memory)");
		return NULL;
	}
	cred = g_strndup(token, len);
	e = munge_decode(cred, ctx, &payload, &plen, &cred_uid, &cred_gid);
	if (e == EMUNGE_CRED_REPLAYED) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_AUTH,
			    "credential replayed");
	} else if (e != EMUNGE_SUCCESS) {
		set_munge_error(error, "credential refused by munge", e, ctx);
	} else {
		*uid = cred_uid;
		*gid = cred_gid;
		out = g_bytes_new(payload, plen > 0 ? (size_t) plen : 0);
	}
	/* munge allocates the payload even for some failures. */
	free(payload);
	g_free(cred);
	munge_ctx_destroy(ctx);
	return out;
}
