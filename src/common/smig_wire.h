/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_wire.h - messages between srun, node agents and the balancer
 *
 * A frame is a 12-byte header (all big-endian):
 *     u32 magic "SMIG" | u16 version | u16 type | u32 body length
 * followed by the body: an authentication token (smig_auth_seal()) whose
 * payload is   u16 type (again, so the header cannot be altered) |
 *              GVariant of type a{sv} in normal form.
 * Bodies larger than SMIG_WIRE_MAX_BODY are refused before they are read.
 * The fields of each message type: smig_msgs.def (typed functions in
 * smig_msgs.h), which doc/design.md's table must match (msgs-test).
 */
#ifndef SMIG_WIRE_H
#define SMIG_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <glib.h>

#include "smig_auth.h"

#define SMIG_WIRE_MAGIC		0x534d4947u	/* "SMIG" */
#define SMIG_WIRE_VERSION	1
#define SMIG_WIRE_HEADER_SIZE	12
#define SMIG_WIRE_MAX_BODY	(1u << 20)

typedef enum {
	SMIG_MSG_HELLO_SRUN = 1,	/* srun -> balancer: a step asks for migration */
	SMIG_MSG_HELLO_AGENT = 2,	/* agent -> balancer: ranks of a step on a node */
	SMIG_MSG_PREPARE = 3,		/* balancer -> agents: start capture of gen */
	SMIG_MSG_COUNT = 4,		/* agent -> balancer: a rank's pause point */
	SMIG_MSG_CAPTURE = 5,		/* balancer -> agents: capture at target */
	SMIG_MSG_DONE = 6,		/* agent -> balancer: a rank's image, verified */
	SMIG_MSG_ABORT = 7,		/* balancer -> agents: discard gen, resume */
	SMIG_MSG_RELAUNCH = 8,		/* balancer -> srun: new mapping after gen */
	SMIG_MSG_RELAUNCH_ACK = 9,	/* srun -> balancer: will relaunch */
	SMIG_MSG_COMMIT = 10,		/* balancer -> agents: gen good; stop or go on */
	SMIG_MSG_BYE = 11,		/* srun/agent -> balancer: step ends */
	SMIG_MSG_REFUSED = 12,		/* balancer -> sender: request refused, why */
	/* Reserved for work in progress (monitoring, images, CLI); see
	 * doc/design.md when they land. */
	SMIG_MSG_SAMPLE = 13,		/* agent -> balancer: per-rank samples */
	SMIG_MSG_QUERY = 14,		/* CLI -> balancer: a job's state/history */
	SMIG_MSG_STATUS = 15,		/* balancer -> CLI: answer to QUERY */
	SMIG_MSG_REQUEST = 16,		/* CLI -> balancer: capture/move now */
	SMIG_MSG_REPLY = 17,		/* balancer -> CLI: answer to REQUEST */
	SMIG_MSG_HANDOFF = 18,		/* agent <-> agent: image transfer */
	SMIG_MSG_RESTORED = 19,		/* agent -> balancer: ranks past restore */
	SMIG_MSG_FATE_QUERY = 20,	/* epilog, CLI -> balancer: job's end */
	SMIG_MSG_FATE = 21,		/* balancer -> epilog, CLI: answer */
	SMIG_MSG_FATE_DONE = 22,	/* epilog, CLI -> balancer: what it did */
	SMIG_MSG_NODE_EVENT = 23,	/* smigd -E -> balancer: nodes changed */
	SMIG_MSG_NODE_EVENT_OK = 24,	/* balancer -> smigd -E: answer */
	SMIG_MSG_TYPE_MAX
} smig_msg_type_t;

typedef struct smig_msg {
	smig_msg_type_t type;
	GVariant *body;		/* a{sv}, owned (non-floating) */
	uint32_t uid;		/* authenticated sender */
	uint32_t gid;
} smig_msg_t;

/* smig_msg_type_name - "HELLO_SRUN", ... or "UNKNOWN" (static) */
const char *smig_msg_type_name(smig_msg_type_t type);

/*
 * smig_msg_new - a message to send
 * IN body - a{sv} GVariant; a floating reference is sunk, else a new
 *           reference is taken
 * RET new message, caller frees with smig_msg_free()
 */
smig_msg_t *smig_msg_new(smig_msg_type_t type, GVariant *body);

/* smig_msg_free - free a message; NULL is a no-op */
void smig_msg_free(smig_msg_t *msg);

/* Typed field lookups: false (and *out untouched) if absent or of another type. */
bool smig_msg_get_u32(const smig_msg_t *msg, const char *key, uint32_t *out);
bool smig_msg_get_u64(const smig_msg_t *msg, const char *key, uint64_t *out);
bool smig_msg_get_i32(const smig_msg_t *msg, const char *key, int32_t *out);
bool smig_msg_get_bool(const smig_msg_t *msg, const char *key, bool *out);
/* borrowed from the message */
bool smig_msg_get_str(const smig_msg_t *msg, const char *key, const char **out);
/* "au": new array, caller g_free()s; *n set */
bool smig_msg_get_u32_array(const smig_msg_t *msg, const char *key,
			    uint32_t **out, size_t *n);

/*
 * smig_wire_encode - one frame
 * RET new bytes, caller frees with g_bytes_unref(); NULL on error
 */
GBytes *smig_wire_encode(smig_auth_t *auth, const smig_msg_t *msg,
			 GError **error);

/*
 * smig_wire_decode - take one frame from the front of a buffer
 * IN  buf, len  - received bytes (not trusted)
 * OUT consumed  - bytes used (0 when more are needed)
 * OUT error     - bad magic, version, type, size, token or body
 * The body's fields are not checked here: a receiver that decodes from a
 * buffer checks them with smig_msgs_check() (and may answer a bad one).
 * RET new message (uid/gid set), caller frees with smig_msg_free();
 *     NULL with *error unset when the frame is not complete yet;
 *     NULL with *error set when the stream is bad (close it).
 */
smig_msg_t *smig_wire_decode(smig_auth_t *auth, const uint8_t *buf, size_t len,
			     size_t *consumed, GError **error);

/*
 * smig_wire_send - write one frame to a blocking socket (handles EINTR,
 * short writes; MSG_NOSIGNAL). Caller serialises writers on one fd.
 */
bool smig_wire_send(int fd, smig_auth_t *auth, const smig_msg_t *msg,
		    GError **error);

/*
 * smig_wire_recv - read one frame from a blocking socket; its body must
 * follow the message's schema (smig_msgs_check(), smig_msgs.def)
 * IN timeout_ms - -1 waits forever
 * RET new message, caller frees with smig_msg_free(); NULL on error,
 *     timeout (SMIG_ERROR_IO, "timed out") or end of stream
 *     (SMIG_ERROR_IO, "connection closed"); NULL with SMIG_ERROR_WIRE
 *     naming the message, field and types when the body breaks the
 *     schema (that frame is consumed: the stream can go on)
 */
smig_msg_t *smig_wire_recv(int fd, smig_auth_t *auth, int timeout_ms,
			   GError **error);

/*
 * smig_wire_connect - TCP connection to host:port (blocking, with timeout)
 * RET connected fd (CLOEXEC), or -1 with error set
 */
int smig_wire_connect(const char *host, uint16_t port, int timeout_ms,
		      GError **error);

#endif /* SMIG_WIRE_H */
