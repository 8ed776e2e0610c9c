/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_wire.c - frames of authenticated a{sv} messages over TCP
 */
#include "smig_config.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>
#include <glib.h>

#include "smig_error.h"
#include "smig_msgs.h"
#include "smig_wire.h"

/* A stuck peer must not block a sender forever. */
#define SEND_TIMEOUT_MS 30000

static const char *const type_names[SMIG_MSG_TYPE_MAX] = {
	[SMIG_MSG_HELLO_SRUN] = "HELLO_SRUN",
	[SMIG_MSG_HELLO_AGENT] = "HELLO_AGENT",
	[SMIG_MSG_PREPARE] = "PREPARE",
	[SMIG_MSG_COUNT] = "COUNT",
	[SMIG_MSG_CAPTURE] = "CAPTURE",
	[SMIG_MSG_DONE] = "DONE",
	[SMIG_MSG_ABORT] = "ABORT",
	[SMIG_MSG_RELAUNCH] = "RELAUNCH",
	[SMIG_MSG_RELAUNCH_ACK] = "RELAUNCH_ACK",
	[SMIG_MSG_COMMIT] = "COMMIT",
	[SMIG_MSG_BYE] = "BYE",
	[SMIG_MSG_REFUSED] = "REFUSED",
	[SMIG_MSG_SAMPLE] = "SAMPLE",
	[SMIG_MSG_QUERY] = "QUERY",
	[SMIG_MSG_STATUS] = "STATUS",
	[SMIG_MSG_REQUEST] = "REQUEST",
	[SMIG_MSG_REPLY] = "REPLY",
	[SMIG_MSG_HANDOFF] = "HANDOFF",
	[SMIG_MSG_RESTORED] = "RESTORED",
	[SMIG_MSG_FATE_QUERY] = "FATE_QUERY",
	[SMIG_MSG_FATE] = "FATE",
	[SMIG_MSG_FATE_DONE] = "FATE_DONE",
	[SMIG_MSG_NODE_EVENT] = "NODE_EVENT",
	[SMIG_MSG_NODE_EVENT_OK] = "NODE_EVENT_OK",
};

/* smig_msg_type_name - "HELLO_SRUN", ... or "UNKNOWN" (static) */
const char *smig_msg_type_name(smig_msg_type_t type)
{
	if ((unsigned) type >= SMIG_MSG_TYPE_MAX || !type_names[type])
		return "UNKNOWN";
	return type_names[type];
}

static bool type_valid(unsigned type)
{
	return type >= SMIG_MSG_HELLO_SRUN && type < SMIG_MSG_TYPE_MAX;
}

/*
 * smig_msg_new - a message to send
 * IN body - a{sv} GVariant; a floating reference is sunk, else a new
 *           reference is taken
 * RET new message, caller frees with smig_msg_free()
 */
smig_msg_t *smig_msg_new(smig_msg_type_t type, GVariant *body)
{
	smig_msg_t *msg = g_new0(smig_msg_t, 1);

	msg->type = type;
	msg->body = g_variant_ref_sink(body);
	return msg;
}

/* smig_msg_free - free a message; NULL is a no-op */
void smig_msg_free(smig_msg_t *msg)
{
	if (!msg)
		return;
	if (msg->body)
		g_variant_unref(msg->body);
	g_free(msg);
}

static GVariant *lookup(const smig_msg_t *msg, const char *key,
			const GVariantType *type)
{
	if (!msg || !msg->body ||
	    !g_variant_is_of_type(msg->body, G_VARIANT_TYPE_VARDICT))
		return NULL;
	return g_variant_lookup_value(msg->body, key, type);
}

/* smig_msg_get_u32 - field "key" of type u; false if absent or other type */
bool smig_msg_get_u32(const smig_msg_t *msg, const char *key, uint32_t *out)
{
	GVariant *v = lookup(msg, key, G_VARIANT_TYPE_UINT32);

	if (!v)
		return false;
	*out = g_variant_get_uint32(v);
	g_variant_unref(v);
	return true;
}

/* smig_msg_get_u64 - field "key" of type t; false if absent or other type */
bool smig_msg_get_u64(const smig_msg_t *msg, const char *key, uint64_t *out)
{
	GVariant *v = lookup(msg, key, G_VARIANT_TYPE_UINT64);

	if (!v)
		return false;
	*out = g_variant_get_uint64(v);
	g_variant_unref(v);
	return true;
}

/* smig_msg_get_i32 - field "key" of type i; false if absent or other type */
bool smig_msg_get_i32(const smig_msg_t *msg, const char *key, int32_t *out)
{
	GVariant *v = lookup(msg, key, G_VARIANT_TYPE_INT32);

	if (!v)
		return false;
	*out = g_variant_get_int32(v);
	g_variant_unref(v);
	return true;
}

/* smig_msg_get_bool - field "key" of type b; false if absent or other type */
bool smig_msg_get_bool(const smig_msg_t *msg, const char *key, bool *out)
{
	GVariant *v = lookup(msg, key, G_VARIANT_TYPE_BOOLEAN);

	if (!v)
		return false;
	*out = g_variant_get_boolean(v);
	g_variant_unref(v);
	return true;
}

/*
 * smig_msg_get_str - field "key" of type s
 * OUT out - borrowed from the message (valid while msg lives)
 */
bool smig_msg_get_str(const smig_msg_t *msg, const char *key, const char **out)
{
	GVariant *v = lookup(msg, key, G_VARIANT_TYPE_STRING);

	if (!v)
		return false;
	/* The value's data lives in the message's body: borrowing is safe. */
	*out = g_variant_get_string(v, NULL);
	g_variant_unref(v);
	return true;
}

/*
 * smig_msg_get_u32_array - field "key" of type au
 * OUT out - new array, caller g_free()s (NULL when empty); n - its length
 */
bool smig_msg_get_u32_array(const smig_msg_t *msg, const char *key,
			    uint32_t **out, size_t *n)
{
	GVariant *v = lookup(msg, key, G_VARIANT_TYPE("au"));
	const uint32_t *elems;
	gsize count = 0;

	if (!v)
		return false;
	elems = g_variant_get_fixed_array(v, &count, sizeof(uint32_t));
	*out = count ? g_memdup2(elems, count * sizeof(uint32_t)) : NULL;
	*n = count;
	g_variant_unref(v);
	return true;
}

static void put_be32(uint8_t *p, uint32_t v)
{
	v = GUINT32_TO_BE(v);
	memcpy(p, &v, 4);
}

static void put_be16(uint8_t *p, uint16_t v)
{
	v = GUINT16_TO_BE(v);
	memcpy(p, &v, 2);
}

static uint32_t get_be32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return GUINT32_FROM_BE(v);
}

static uint16_t get_be16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return GUINT16_FROM_BE(v);
}

/*
 * smig_wire_encode - one frame
 * RET new bytes, caller frees with g_bytes_unref(); NULL on error
 */
GBytes *smig_wire_encode(smig_auth_t *auth, const smig_msg_t *msg,
			 GError **error)
{
	GVariant *normal;
	GBytes *token, *vdata;
	const void *vptr;
	uint8_t *payload, *frame;
	gsize vlen, tlen;
	const void *tdata;

	if (!type_valid(msg->type)) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_WIRE,
			    "cannot send message type %u (1-%u)",
			    (unsigned) msg->type, SMIG_MSG_TYPE_MAX - 1);
		return NULL;
	}
	if (!msg->body ||
	    !g_variant_is_of_type(msg->body, G_VARIANT_TYPE_VARDICT)) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_WIRE,
			    "%s: body must be a GVariant of type a{sv}, not %s",
			    smig_msg_type_name(msg->type),
			    msg->body ? g_variant_get_type_string(msg->body) :
					"NULL");
		return NULL;
	}

	/* g_variant_store() needs aligned memory: copy the data instead. */
	normal = g_variant_get_normal_form(msg->body);
	vdata = g_variant_get_data_as_bytes(normal);
	g_variant_unref(normal);
	vptr = g_bytes_get_data(vdata, &vlen);
	payload = g_malloc(2 + vlen);
	put_be16(payload, (uint16_t) msg->type);
	if (vlen)
		memcpy(payload + 2, vptr, vlen);
	g_bytes_unref(vdata);

	token = smig_auth_seal(auth, payload, 2 + vlen, error);
	g_free(payload);
	if (!token)
		return NULL;

	tdata = g_bytes_get_data(token, &tlen);
	if (tlen > SMIG_WIRE_MAX_BODY) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_WIRE,
			    "%s: body of %zu bytes exceeds the limit (%u bytes)",
			    smig_msg_type_name(msg->type), (size_t) tlen,
			    SMIG_WIRE_MAX_BODY);
		g_bytes_unref(token);
		return NULL;
	}
	frame = g_malloc(SMIG_WIRE_HEADER_SIZE + tlen);
	put_be32(frame, SMIG_WIRE_MAGIC);
	put_be16(frame + 4, SMIG_WIRE_VERSION);
	put_be16(frame + 6, (uint16_t) msg->type);
	put_be32(frame + 8, (uint32_t) tlen);
	memcpy(frame + SMIG_WIRE_HEADER_SIZE, tdata, tlen);
	g_bytes_unref(token);
	return g_bytes_new_take(frame, SMIG_WIRE_HEADER_SIZE + tlen);
}

/*
 * Check the header fields that are there (len may be short); everything is
 * refused before the body is waited for.
 * OUT body_len - set when the whole header is there
 * RET false with error set if what is there is bad
 */
static bool check_header(const uint8_t *buf, size_t len, uint16_t *type,
			 uint32_t *body_len, GError **error)
{
	static const uint8_t magic[4] = { 'S', 'M', 'I', 'G' };
	uint32_t v;

	/* Compare the magic bytes we have, to drop garbage at once. */
	if (memcmp(buf, magic, MIN(len, sizeof(magic)))) {
		uint8_t m[4] = { 0 };

		memcpy(m, buf, MIN(len, sizeof(m)));
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_WIRE,
			    "bad magic 0x%02x%02x%02x%02x (expected 0x%08x \"SMIG\")",
			    m[0], m[1], m[2], m[3], SMIG_WIRE_MAGIC);
		return false;
	}
	if (len < SMIG_WIRE_HEADER_SIZE)
		return true;
	if ((v = get_be16(buf + 4)) != SMIG_WIRE_VERSION) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_WIRE,
			    "unsupported protocol version %u (expected %u)",
			    v, SMIG_WIRE_VERSION);
		return false;
	}
	*type = get_be16(buf + 6);
	if (!type_valid(*type)) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_WIRE,
			    "unknown message type %u (1-%u)", *type,
			    SMIG_MSG_TYPE_MAX - 1);
		return false;
	}
	*body_len = get_be32(buf + 8);
	if (*body_len > SMIG_WIRE_MAX_BODY) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_WIRE,
			    "%s: body of %u bytes exceeds the limit (%u bytes)",
			    smig_msg_type_name(*type), *body_len,
			    SMIG_WIRE_MAX_BODY);
		return false;
	}
	return true;
}

/*
 * smig_wire_decode - take one frame from the front of a buffer
 * IN  buf, len  - received bytes (not trusted)
 * OUT consumed  - bytes used (0 when more are needed or on error)
 * OUT error     - bad magic, version, type, size, token or body
 * The body is not checked against the message's schema: the caller does
 * that with smig_msgs_check() (and can answer a bad message, see
 * smig_wire_recv()).
 * RET new message (uid/gid set), caller frees with smig_msg_free();
 *     NULL with *error unset when the frame is not complete yet;
 *     NULL with *error set when the stream is bad (close it).
 */
smig_msg_t *smig_wire_decode(smig_auth_t *auth, const uint8_t *buf, size_t len,
			     size_t *consumed, GError **error)
{
	uint16_t type = 0, inner;
	uint32_t body_len = 0, uid = 0, gid = 0;
	GBytes *payload, *vbytes;
	GVariant *body;
	const uint8_t *p;
	gsize plen;
	smig_msg_t *msg = NULL;

	*consumed = 0;
	if (len == 0)
		return NULL;
	if (!check_header(buf, len, &type, &body_len, error))
		return NULL;
	if (len < SMIG_WIRE_HEADER_SIZE ||
	    len - SMIG_WIRE_HEADER_SIZE < body_len)
		return NULL;

	payload = smig_auth_open(auth, buf + SMIG_WIRE_HEADER_SIZE, body_len,
				 &uid, &gid, error);
	if (!payload)
		return NULL;
	p = g_bytes_get_data(payload, &plen);
	if (plen < 2) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_WIRE,
			    "%s: payload of %zu bytes is too short (at least 2)",
			    smig_msg_type_name(type), (size_t) plen);
		goto out_unref_payload;
	}
	if ((inner = get_be16(p)) != type) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_WIRE,
			    "sealed type %u (%s) does not match header type %u (%s)",
			    inner, smig_msg_type_name(inner), type,
			    smig_msg_type_name(type));
		goto out_unref_payload;
	}

	/* Untrusted: GVariant copies misaligned data and checks offsets. */
	vbytes = g_bytes_new_from_bytes(payload, 2, plen - 2);
	body = g_variant_new_from_bytes(G_VARIANT_TYPE_VARDICT, vbytes, false);
	g_bytes_unref(vbytes);
	g_variant_ref_sink(body);
	if (!g_variant_is_normal_form(body)) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_WIRE,
			    "%s: body is not a GVariant a{sv} in normal form",
			    smig_msg_type_name(type));
		g_variant_unref(body);
		goto out_unref_payload;
	}

	msg = g_new0(smig_msg_t, 1);
	msg->type = type;
	msg->body = body;
	msg->uid = uid;
	msg->gid = gid;
	*consumed = SMIG_WIRE_HEADER_SIZE + body_len;
out_unref_payload:
	g_bytes_unref(payload);
	return msg;
}

/* Milliseconds left until deadline (monotonic us); -1 if there is none. */
static int time_left(gint64 deadline)
{
	gint64 left;

	if (deadline < 0)
		return -1;
	left = (deadline - g_get_monotonic_time() + 999) / 1000;
	return left > 0 ? (int) MIN(left, G_MAXINT) : 0;
}

/* Wait for events on fd. RET 1 ready, 0 timed out, -1 error (errno). */
static int wait_fd(int fd, short events, gint64 deadline)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	int rc;

	for (;;) {
		rc = poll(&pfd, 1, time_left(deadline));
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc <= 0)
			return rc;
		/* POLLHUP/POLLERR: let read()/send() report what happened. */
		return 1;
	}
}

/*
 * smig_wire_send - write one frame to a socket (EINTR, short writes,
 * MSG_NOSIGNAL; gives up after SEND_TIMEOUT_MS without progress).
 * Caller serialises writers on one fd.
 * RET false with error set (SMIG_ERROR_IO) on failure
 */
bool smig_wire_send(int fd, smig_auth_t *auth, const smig_msg_t *msg,
		    GError **error)
{
	GBytes *frame;
	const uint8_t *p;
	gsize left;
	bool ok = false;

	if (!(frame = smig_wire_encode(auth, msg, error)))
		return false;
	p = g_bytes_get_data(frame, &left);
	while (left > 0) {
		gint64 deadline = g_get_monotonic_time() +
				  SEND_TIMEOUT_MS * G_GINT64_CONSTANT(1000);
		ssize_t n;
		int rc;

		rc = wait_fd(fd, POLLOUT, deadline);
		if (rc == 0) {
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_IO,
				    "send %s: timed out after %d ms",
				    smig_msg_type_name(msg->type),
				    SEND_TIMEOUT_MS);
			goto out_unref;
		}
		if (rc < 0) {
			int e = errno;

			g_set_error(error, SMIG_ERROR, SMIG_ERROR_IO,
				    "send %s: poll: %s",
				    smig_msg_type_name(msg->type),
				    g_strerror(e));
			goto out_unref;
		}
		n = send(fd, p, left, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			int e = errno;

			if (e == EINTR || e == EAGAIN || e == EWOULDBLOCK)
				continue;
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_IO,
				    "send %s: %s",
				    smig_msg_type_name(msg->type),
				    g_strerror(e));
			goto out_unref;
		}
		p += n;
		left -= (gsize) n;
	}
	ok = true;
out_unref:
	g_bytes_unref(frame);
	return ok;
}

/*
 * Read exactly len bytes before the deadline.
 * RET true; false with error set (timed out, connection closed, read error)
 */
static bool read_full(int fd, uint8_t *buf, size_t len, size_t already,
		      size_t frame_len, gint64 deadline, GError **error)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n;
		int rc = wait_fd(fd, POLLIN, deadline);

		if (rc == 0) {
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_IO,
				    "timed out");
			return false;
		}
		if (rc < 0) {
			int e = errno;

			g_set_error(error, SMIG_ERROR, SMIG_ERROR_IO,
				    "poll: %s", g_strerror(e));
			return false;
		}
		n = read(fd, buf + got, len - got);
		if (n < 0) {
			int e = errno;

			if (e == EINTR || e == EAGAIN || e == EWOULDBLOCK)
				continue;
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_IO,
				    "read: %s", g_strerror(e));
			return false;
		}
		if (n == 0) {
			if (already + got == 0)
				g_set_error(error, SMIG_ERROR, SMIG_ERROR_IO,
					    "connection closed");
			else
				g_set_error(error, SMIG_ERROR, SMIG_ERROR_IO,
					    "connection closed after %zu of %zu bytes of a frame",
					    already + got, frame_len);
			return false;
		}
		got += (size_t) n;
	}
	return true;
}

/*
 * smig_wire_recv - read one frame from a socket, and check its body
 * against the message's schema (smig_msgs_check())
 * IN timeout_ms - for the whole frame; -1 waits forever
 * RET new message, caller frees with smig_msg_free(); NULL on error,
 *     timeout (SMIG_ERROR_IO, "timed out") or end of stream
 *     (SMIG_ERROR_IO, "connection closed"); NULL with SMIG_ERROR_SCHEMA
 *     "TYPE: field KEY ..." when the frame was good but its body breaks
 *     the schema (the frame is consumed: the stream can go on)
 */
smig_msg_t *smig_wire_recv(int fd, smig_auth_t *auth, int timeout_ms,
			   GError **error)
{
	uint8_t hdr[SMIG_WIRE_HEADER_SIZE];
	gint64 deadline = -1;
	uint16_t type = 0;
	uint32_t body_len = 0;
	uint8_t *frame;
	size_t consumed = 0, frame_len;
	smig_msg_t *msg;
	GError *err = NULL;

	if (timeout_ms >= 0)
		deadline = g_get_monotonic_time() +
			   (gint64) timeout_ms * 1000;
	if (!read_full(fd, hdr, sizeof(hdr), 0, sizeof(hdr), deadline,
		       error))
		return NULL;
	if (!check_header(hdr, sizeof(hdr), &type, &body_len, error))
		return NULL;

	frame_len = SMIG_WIRE_HEADER_SIZE + (size_t) body_len;
	frame = g_malloc(frame_len);
	memcpy(frame, hdr, sizeof(hdr));
	if (!read_full(fd, frame + sizeof(hdr), body_len, sizeof(hdr),
		       frame_len, deadline, error)) {
		g_free(frame);
		return NULL;
	}
	msg = smig_wire_decode(auth, frame, frame_len, &consumed, &err);
	g_free(frame);
	if (!msg) {
		/* A complete frame is always decoded or refused. */
		if (!err)
			g_set_error(&err, SMIG_ERROR, SMIG_ERROR_WIRE,
				    "incomplete frame of %zu bytes", frame_len);
		g_propagate_error(error, err);
		return NULL;
	}
	/* Receivers read fields by the schema: nothing else gets to them. */
	if (!smig_msgs_check(msg, &err)) {
		g_clear_pointer(&msg, smig_msg_free);
		err->code = SMIG_ERROR_SCHEMA;
		g_propagate_error(error, err);
	}
	return msg;
}

/*
 * Connect one address without blocking past the deadline.
 * RET connected blocking fd, or -1 with errno set (ETIMEDOUT on timeout)
 */
static int connect_one(const struct addrinfo *ai, gint64 deadline)
{
	int fd, flags, rc, soerr = 0, one = 1;
	socklen_t slen = sizeof(soerr);

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC |
		    SOCK_NONBLOCK, ai->ai_protocol);
	if (fd < 0)
		return -1;
	rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
	if (rc < 0 && errno != EINPROGRESS && errno != EINTR)
		goto out_close;
	if (rc < 0) {
		rc = wait_fd(fd, POLLOUT, deadline);
		if (rc == 0) {
			errno = ETIMEDOUT;
			goto out_close;
		}
		if (rc < 0)
			goto out_close;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &slen) < 0)
			goto out_close;
		if (soerr) {
			errno = soerr;
			goto out_close;
		}
	}
	if ((flags = fcntl(fd, F_GETFL)) < 0 ||
	    fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0)
		goto out_close;
	/* Messages are small and answered at once: no Nagle delay. */
	if (ai->ai_family == AF_INET || ai->ai_family == AF_INET6)
		(void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
				  sizeof(one));
	return fd;

out_close:
	{
		int e = errno;

		close(fd);
		errno = e;
	}
	return -1;
}

/*
 * smig_wire_connect - TCP connection to host:port (blocking, with timeout)
 * IN timeout_ms - for all addresses together; -1 waits forever
 * RET connected blocking fd (CLOEXEC, TCP_NODELAY), or -1 with error set
 *     naming host:port
 * Name resolution (getaddrinfo) may block on DNS beyond the timeout.
 */
int smig_wire_connect(const char *host, uint16_t port, int timeout_ms,
		      GError **error)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_NUMERICSERV,
	};
	struct addrinfo *res = NULL, *ai;
	char service[8];
	gint64 deadline = -1;
	int fd = -1, rc, e = 0;

	snprintf(service, sizeof(service), "%u", port);
	rc = getaddrinfo(host, service, &hints, &res);
	if (rc) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_IO,
			    "cannot resolve %s:%u: %s", host, port,
			    rc == EAI_SYSTEM ? g_strerror(errno) :
					       gai_strerror(rc));
		return -1;
	}
	if (timeout_ms >= 0)
		deadline = g_get_monotonic_time() +
			   (gint64) timeout_ms * 1000;
	for (ai = res; ai; ai = ai->ai_next) {
		if ((fd = connect_one(ai, deadline)) >= 0)
			break;
		e = errno;
		if (e == ETIMEDOUT)
			break;
	}
	freeaddrinfo(res);
	if (fd >= 0)
		return fd;
	if (e == ETIMEDOUT)
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_IO,
			    "connect to %s:%u: timed out after %d ms", host,
			    port, timeout_ms);
	else
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_IO,
			    "connect to %s:%u: %s", host, port,
			    g_strerror(e));
	return -1;
}
