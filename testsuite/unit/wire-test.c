/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * wire-test.c - frames: round trip, streaming, every refusal; sockets; munge
 */
#include "smig_config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <check.h>
#include <glib.h>

#include "smig_auth.h"
#include "smig_error.h"
#include "smig_msgs.h"
#include "smig_wire.h"

static smig_auth_t *auth;

static void setup(void)
{
	auth = smig_auth_none_new(1000, 100);
}

static void teardown(void)
{
	g_clear_pointer(&auth, smig_auth_free);
}

static smig_msg_t *hello_agent(void)
{
	static const uint32_t ranks[] = { 4, 5, 7 };
	GVariantBuilder b;

	g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(&b, "{sv}", "job", g_variant_new_uint32(42));
	g_variant_builder_add(&b, "{sv}", "step", g_variant_new_uint32(0));
	g_variant_builder_add(&b, "{sv}", "node", g_variant_new_string("node2"));
	g_variant_builder_add(&b, "{sv}", "gen", g_variant_new_uint64(1ull << 40));
	g_variant_builder_add(&b, "{sv}", "status", g_variant_new_int32(-5));
	g_variant_builder_add(&b, "{sv}", "stop", g_variant_new_boolean(true));
	g_variant_builder_add(&b, "{sv}", "ranks",
			      g_variant_new_fixed_array(G_VARIANT_TYPE_UINT32,
							ranks, 3,
							sizeof(uint32_t)));
	return smig_msg_new(SMIG_MSG_HELLO_AGENT, g_variant_builder_end(&b));
}

static void check_hello_agent(const smig_msg_t *m)
{
	uint32_t u = 0, *arr = NULL;
	uint64_t t = 0;
	int32_t i = 0;
	bool b = false;
	const char *s = NULL;
	size_t n = 0;

	ck_assert_int_eq(m->type, SMIG_MSG_HELLO_AGENT);
	ck_assert(smig_msg_get_u32(m, "job", &u));
	ck_assert_uint_eq(u, 42);
	ck_assert(smig_msg_get_str(m, "node", &s));
	ck_assert_str_eq(s, "node2");
	ck_assert(smig_msg_get_u64(m, "gen", &t));
	ck_assert_uint_eq(t, 1ull << 40);
	ck_assert(smig_msg_get_i32(m, "status", &i));
	ck_assert_int_eq(i, -5);
	ck_assert(smig_msg_get_bool(m, "stop", &b));
	ck_assert(b);
	ck_assert(smig_msg_get_u32_array(m, "ranks", &arr, &n));
	ck_assert_uint_eq(n, 3);
	ck_assert_uint_eq(arr[0], 4);
	ck_assert_uint_eq(arr[2], 7);
	g_free(arr);
}

/* Encode msg; RET its frame as a g_malloc'd copy. */
static uint8_t *frame_of(const smig_msg_t *m, size_t *len)
{
	GError *err = NULL;
	GBytes *f = smig_wire_encode(auth, m, &err);
	gsize n;
	const void *p;
	uint8_t *copy;

	ck_assert_msg(f, "encode: %s", err ? err->message : "");
	p = g_bytes_get_data(f, &n);
	copy = g_memdup2(p, n);
	*len = n;
	g_bytes_unref(f);
	return copy;
}

/* A frame around an arbitrary sealed payload. */
static uint8_t *raw_frame(uint16_t type, const void *payload, size_t plen,
			  size_t *len)
{
	GBytes *token = smig_auth_seal(auth, payload, plen, NULL);
	gsize tlen;
	const void *t = g_bytes_get_data(token, &tlen);
	uint8_t *f = g_malloc(SMIG_WIRE_HEADER_SIZE + tlen);
	uint32_t v32;
	uint16_t v16;

	v32 = htonl(SMIG_WIRE_MAGIC);
	memcpy(f, &v32, 4);
	v16 = htons(SMIG_WIRE_VERSION);
	memcpy(f + 4, &v16, 2);
	v16 = htons(type);
	memcpy(f + 6, &v16, 2);
	v32 = htonl((uint32_t) tlen);
	memcpy(f + 8, &v32, 4);
	memcpy(f + SMIG_WIRE_HEADER_SIZE, t, tlen);
	*len = SMIG_WIRE_HEADER_SIZE + tlen;
	g_bytes_unref(token);
	return f;
}

static void expect_decode_error(const uint8_t *buf, size_t len, int code,
				const char *msg)
{
	GError *err = NULL;
	size_t consumed = 99;

	ck_assert_ptr_null(smig_wire_decode(auth, buf, len, &consumed, &err));
	ck_assert_ptr_nonnull(err);
	ck_assert_uint_eq(consumed, 0);
	ck_assert_msg(g_error_matches(err, SMIG_ERROR, code), "code %d: %s",
		      err->code, err->message);
	ck_assert_str_eq(err->message, msg);
	g_error_free(err);
}

START_TEST(test_round_trip)
{
	smig_msg_t *m = hello_agent(), *d;
	GError *err = NULL;
	size_t len, consumed = 0;
	uint8_t *f = frame_of(m, &len);

	d = smig_wire_decode(auth, f, len, &consumed, &err);
	ck_assert_ptr_nonnull(d);
	ck_assert_uint_eq(consumed, len);
	ck_assert_uint_eq(d->uid, 1000);
	ck_assert_uint_eq(d->gid, 100);
	check_hello_agent(d);
	ck_assert_str_eq(smig_msg_type_name(d->type), "HELLO_AGENT");
	ck_assert_str_eq(smig_msg_type_name(SMIG_MSG_REFUSED), "REFUSED");
	ck_assert_str_eq(smig_msg_type_name(0), "UNKNOWN");
	ck_assert_str_eq(smig_msg_type_name(SMIG_MSG_TYPE_MAX), "UNKNOWN");
	smig_msg_free(d);
	smig_msg_free(m);
	smig_msg_free(NULL);
	g_free(f);
}
END_TEST

START_TEST(test_getters)
{
	smig_msg_t *m = hello_agent();
	uint32_t u = 7, *arr = NULL;
	uint64_t t = 7;
	const char *s = NULL;
	size_t n = 0;
	bool b = false;

	/* Absent keys and other types leave *out alone. */
	ck_assert(!smig_msg_get_u32(m, "absent", &u));
	ck_assert(!smig_msg_get_u32(m, "gen", &u));
	ck_assert_uint_eq(u, 7);
	ck_assert(!smig_msg_get_u64(m, "job", &t));
	ck_assert_uint_eq(t, 7);
	ck_assert(!smig_msg_get_str(m, "job", &s));
	ck_assert_ptr_null(s);
	ck_assert(!smig_msg_get_bool(m, "node", &b));
	ck_assert(!smig_msg_get_u32_array(m, "node", &arr, &n));
	ck_assert_ptr_null(arr);
	smig_msg_free(m);
}
END_TEST

START_TEST(test_stream)
{
	smig_msg_t *m = hello_agent(), *d;
	GError *err = NULL;
	size_t len, consumed;
	uint8_t *f = frame_of(m, &len);
	uint8_t *two = g_malloc(2 * len);

	/* Every prefix of a frame is "not yet", never an error. */
	for (size_t i = 0; i < len; i++) {
		consumed = 99;
		ck_assert_ptr_null(smig_wire_decode(auth, f, i, &consumed,
						    &err));
		ck_assert_msg(!err, "prefix %zu: %s", i, err->message);
		ck_assert_uint_eq(consumed, 0);
	}
	/* Two frames back to back come out one at a time. */
	memcpy(two, f, len);
	memcpy(two + len, f, len);
	d = smig_wire_decode(auth, two, 2 * len, &consumed, &err);
	ck_assert_ptr_nonnull(d);
	ck_assert_uint_eq(consumed, len);
	smig_msg_free(d);
	d = smig_wire_decode(auth, two + len, len, &consumed, &err);
	ck_assert_ptr_nonnull(d);
	ck_assert_uint_eq(consumed, len);
	smig_msg_free(d);
	g_free(two);
	g_free(f);
	smig_msg_free(m);
}
END_TEST

START_TEST(test_bad_header)
{
	smig_msg_t *m = hello_agent();
	size_t len;
	uint8_t *f = frame_of(m, &len);
	uint8_t hdr[SMIG_WIRE_HEADER_SIZE];

	expect_decode_error((const uint8_t *) "GET / HTTP/1.1\r\n", 16,
			    SMIG_ERROR_WIRE,
			    "bad magic 0x47455420 (expected 0x534d4947 \"SMIG\")");
	/* Garbage is refused from its first bytes on. */
	expect_decode_error((const uint8_t *) "SX", 2, SMIG_ERROR_WIRE,
			    "bad magic 0x53580000 (expected 0x534d4947 \"SMIG\")");

	memcpy(hdr, f, sizeof(hdr));
	hdr[5] = 2;
	expect_decode_error(hdr, sizeof(hdr), SMIG_ERROR_WIRE,
			    "unsupported protocol version 2 (expected 1)");
	memcpy(hdr, f, sizeof(hdr));
	hdr[7] = 0;
	expect_decode_error(hdr, sizeof(hdr), SMIG_ERROR_WIRE,
			    "unknown message type 0 (1-24)");
	hdr[7] = SMIG_MSG_TYPE_MAX;
	expect_decode_error(hdr, sizeof(hdr), SMIG_ERROR_WIRE,
			    "unknown message type 25 (1-24)");
	/* Oversize is refused from the header alone, before the body. */
	memcpy(hdr, f, sizeof(hdr));
	hdr[8] = 0;
	hdr[9] = 0x10;
	hdr[10] = 0;
	hdr[11] = 1;
	expect_decode_error(hdr, sizeof(hdr), SMIG_ERROR_WIRE,
			    "HELLO_AGENT: body of 1048577 bytes exceeds the limit (1048576 bytes)");
	hdr[8] = 0xff;
	expect_decode_error(hdr, sizeof(hdr), SMIG_ERROR_WIRE,
			    "HELLO_AGENT: body of 4279238657 bytes exceeds the limit (1048576 bytes)");
	g_free(f);
	smig_msg_free(m);
}
END_TEST

START_TEST(test_bad_body)
{
	static const uint8_t short_payload[] = { 0 };
	/* HELLO_SRUN sealed, then an a{sv} whose offsets point nowhere. */
	static const uint8_t garbage[] = { 0, 1, 'j', 'o', 'b', 0, 0xff, 0xff };
	smig_msg_t *m = hello_agent();
	size_t len;
	uint8_t *f;

	/* A "none" token must hold at least uid and gid. */
	f = frame_of(m, &len);
	f[8] = f[9] = f[10] = 0;
	f[11] = 4;
	expect_decode_error(f, SMIG_WIRE_HEADER_SIZE + 4, SMIG_ERROR_AUTH,
			    "token too short (4 bytes, at least 8)");
	g_free(f);

	f = raw_frame(SMIG_MSG_BYE, short_payload, sizeof(short_payload), &len);
	expect_decode_error(f, len, SMIG_ERROR_WIRE,
			    "BYE: payload of 1 bytes is too short (at least 2)");
	g_free(f);

	/* The header's type must be the sealed one. */
	f = frame_of(m, &len);
	f[7] = SMIG_MSG_PREPARE;
	expect_decode_error(f, len, SMIG_ERROR_WIRE,
			    "sealed type 2 (HELLO_AGENT) does not match header type 3 (PREPARE)");
	g_free(f);

	f = raw_frame(SMIG_MSG_HELLO_SRUN, garbage, sizeof(garbage), &len);
	expect_decode_error(f, len, SMIG_ERROR_WIRE,
			    "HELLO_SRUN: body is not a GVariant a{sv} in normal form");
	g_free(f);
	smig_msg_free(m);
}
END_TEST

START_TEST(test_non_normal)
{
	/*
	 * A valid a{sv} serialisation made non-normal: an extra padding byte
	 * that is not zero. Built from a real body so only normality differs.
	 */
	GVariant *v = g_variant_new_parsed("{'a': <byte 1>, 'bb': <uint64 2>}");
	GBytes *data;
	const uint8_t *p;
	gsize n;
	uint8_t *payload, *f;
	size_t len;
	bool found = false;

	g_variant_ref_sink(v);
	data = g_variant_get_data_as_bytes(v);
	p = g_bytes_get_data(data, &n);
	payload = g_malloc(n + 2);
	payload[0] = 0;
	payload[1] = SMIG_MSG_COUNT;
	memcpy(payload + 2, p, n);
	/* Turn one zero padding byte into junk; GVariant still reads it. */
	for (gsize i = 0; i < n && !found; i++) {
		GVariant *t;
		GBytes *b;

		if (payload[2 + i] != 0)
			continue;
		payload[2 + i] = 0x5a;
		b = g_bytes_new(payload + 2, n);
		t = g_variant_new_from_bytes(G_VARIANT_TYPE_VARDICT, b, false);
		g_bytes_unref(b);
		g_variant_ref_sink(t);
		if (!g_variant_is_normal_form(t))
			found = true;
		else
			payload[2 + i] = 0;
		g_variant_unref(t);
	}
	ck_assert(found);
	f = raw_frame(SMIG_MSG_COUNT, payload, n + 2, &len);
	expect_decode_error(f, len, SMIG_ERROR_WIRE,
			    "COUNT: body is not a GVariant a{sv} in normal form");
	g_free(f);
	g_free(payload);
	g_bytes_unref(data);
	g_variant_unref(v);
}
END_TEST

START_TEST(test_encode_errors)
{
	GError *err = NULL;
	smig_msg_t *m = smig_msg_new(SMIG_MSG_BYE, g_variant_new_string("x"));

	ck_assert_ptr_null(smig_wire_encode(auth, m, &err));
	ck_assert_str_eq(err->message,
			 "BYE: body must be a GVariant of type a{sv}, not s");
	g_clear_error(&err);
	smig_msg_free(m);

	m = smig_msg_new(SMIG_MSG_TYPE_MAX, g_variant_new_parsed("@a{sv} {}"));
	ck_assert_ptr_null(smig_wire_encode(auth, m, &err));
	ck_assert_str_eq(err->message, "cannot send message type 25 (1-24)");
	g_clear_error(&err);
	smig_msg_free(m);
}
END_TEST

START_TEST(test_socket_round_trip)
{
	int sv[2];
	smig_msg_t *m = hello_agent(), *d;
	GError *err = NULL;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ck_assert(smig_wire_send(sv[0], auth, m, &err));
	d = smig_wire_recv(sv[1], auth, 1000, &err);
	ck_assert_msg(d, "%s", err ? err->message : "");
	check_hello_agent(d);
	smig_msg_free(d);

	/* Nothing more: a timeout, then the end of the stream. */
	ck_assert_ptr_null(smig_wire_recv(sv[1], auth, 50, &err));
	ck_assert(g_error_matches(err, SMIG_ERROR, SMIG_ERROR_IO));
	ck_assert_str_eq(err->message, "timed out");
	g_clear_error(&err);
	close(sv[0]);
	ck_assert_ptr_null(smig_wire_recv(sv[1], auth, 1000, &err));
	ck_assert_str_eq(err->message, "connection closed");
	g_clear_error(&err);
	close(sv[1]);
	smig_msg_free(m);
}
END_TEST

START_TEST(test_socket_truncated)
{
	int sv[2];
	smig_msg_t *m = hello_agent();
	GError *err = NULL;
	size_t len;
	uint8_t *f = frame_of(m, &len);

	/* Half a header, then the peer goes away. */
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ck_assert_int_eq(write(sv[0], f, 5), 5);
	close(sv[0]);
	ck_assert_ptr_null(smig_wire_recv(sv[1], auth, 1000, &err));
	ck_assert_str_eq(err->message,
			 "connection closed after 5 of 12 bytes of a frame");
	g_clear_error(&err);
	close(sv[1]);

	/* A header and part of the body. */
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ck_assert_int_eq(write(sv[0], f, 20), 20);
	close(sv[0]);
	ck_assert_ptr_null(smig_wire_recv(sv[1], auth, 1000, &err));
	{
		char *want = g_strdup_printf("connection closed after 20 of %zu bytes of a frame",
					     len);

		ck_assert_str_eq(err->message, want);
		g_free(want);
	}
	g_clear_error(&err);
	close(sv[1]);

	/* An oversize header is refused at once, without waiting for more. */
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	f[8] = 0x7f;
	ck_assert_int_eq(write(sv[0], f, SMIG_WIRE_HEADER_SIZE),
			 SMIG_WIRE_HEADER_SIZE);
	ck_assert_ptr_null(smig_wire_recv(sv[1], auth, -1, &err));
	ck_assert(g_str_has_suffix(err->message,
				   "exceeds the limit (1048576 bytes)"));
	g_clear_error(&err);
	close(sv[0]);
	close(sv[1]);
	g_free(f);
	smig_msg_free(m);
}
END_TEST

static gpointer reader(gpointer data)
{
	int fd = GPOINTER_TO_INT(data);

	return smig_wire_recv(fd, auth, 5000, NULL);
}

START_TEST(test_socket_large)
{
	/* Larger than a socket buffer: short writes and reads on both sides. */
	size_t big = 900 * 1024;
	char *s = g_malloc(big + 1);
	smig_msg_relaunch_t r = { .job = 7, .step = 1, .gen = 2,
				  .reason = "test" };
	smig_msg_t *m, *d;
	const char *got;
	GError *err = NULL;
	GThread *t;
	int sv[2];

	memset(s, 'x', big);
	s[big] = '\0';
	r.hostfile = s;
	m = smig_msg_relaunch_encode(&r);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	t = g_thread_new("reader", reader, GINT_TO_POINTER(sv[1]));
	ck_assert_msg(smig_wire_send(sv[0], auth, m, &err), "%s",
		      err ? err->message : "");
	d = g_thread_join(t);
	ck_assert_ptr_nonnull(d);
	ck_assert(smig_msg_get_str(d, "hostfile", &got));
	ck_assert_uint_eq(strlen(got), big);
	smig_msg_free(d);
	smig_msg_free(m);
	close(sv[0]);
	close(sv[1]);
	g_free(s);
}
END_TEST

START_TEST(test_connect)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t slen = sizeof(sa);
	int lfd, fd, afd;
	uint16_t port;
	GError *err = NULL;
	smig_msg_t *m = hello_agent(), *d;
	char *want;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(lfd, 0);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *) &sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(lfd, 4), 0);
	ck_assert_int_eq(getsockname(lfd, (struct sockaddr *) &sa, &slen), 0);
	port = ntohs(sa.sin_port);

	fd = smig_wire_connect("127.0.0.1", port, 2000, &err);
	ck_assert_msg(fd >= 0, "%s", err ? err->message : "");
	ck_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	ck_assert(!(fcntl(fd, F_GETFL) & O_NONBLOCK));
	afd = accept(lfd, NULL, NULL);
	ck_assert_int_ge(afd, 0);
	ck_assert(smig_wire_send(fd, auth, m, &err));
	d = smig_wire_recv(afd, auth, 1000, &err);
	ck_assert_ptr_nonnull(d);
	check_hello_agent(d);
	smig_msg_free(d);
	close(afd);
	close(fd);

	/* Nobody listens any more: refused, naming host and port. */
	close(lfd);
	ck_assert_int_eq(smig_wire_connect("127.0.0.1", port, 2000, &err), -1);
	want = g_strdup_printf("connect to 127.0.0.1:%u: Connection refused",
			       port);
	ck_assert_str_eq(err->message, want);
	g_free(want);
	g_clear_error(&err);
	smig_msg_free(m);
}
END_TEST

/*
 * A real munge round trip with the munged whose socket
 * SMIG_TEST_MUNGE_SOCKET names (testsuite/unit/munge-test.sh starts a
 * private one and runs this case): a munged that does not answer fails it.
 */
START_TEST(test_munge)
{
	const char *sock = getenv("SMIG_TEST_MUNGE_SOCKET");
	smig_auth_t *m;
	GBytes *tok, *payload;
	GError *err = NULL;
	uint32_t uid = 1, gid = 1;
	const void *t;
	gsize tlen;

	m = smig_auth_munge_new(sock, &err);
	ck_assert_msg(m, "%s", err ? err->message : "");
	tok = smig_auth_seal(m, "hello", 5, &err);
	ck_assert_msg(tok, "munged at %s does not answer: %s", sock,
		      err ? err->message : "");
	t = g_bytes_get_data(tok, &tlen);
	payload = smig_auth_open(m, t, tlen, &uid, &gid, &err);
	ck_assert_msg(payload, "%s", err ? err->message : "");
	ck_assert_uint_eq(g_bytes_get_size(payload), 5);
	ck_assert(!memcmp(g_bytes_get_data(payload, NULL), "hello", 5));
	ck_assert_uint_eq(uid, getuid());
	ck_assert_uint_eq(gid, getgid());
	g_bytes_unref(payload);

	/* munged remembers what it decoded: a replay is refused. */
	ck_assert_ptr_null(smig_auth_open(m, t, tlen, &uid, &gid, &err));
	ck_assert(g_error_matches(err, SMIG_ERROR, SMIG_ERROR_AUTH));
	ck_assert_str_eq(err->message, "credential replayed");
	g_clear_error(&err);

	/* A forged credential names munge's reason. */
	ck_assert_ptr_null(smig_auth_open(m, "MUNGE:AAAA:", 11, &uid, &gid,
					  &err));
	ck_assert(g_str_has_prefix(err->message,
				   "credential refused by munge: "));
	g_clear_error(&err);
	ck_assert_ptr_null(smig_auth_open(m, "", 0, &uid, &gid, &err));
	ck_assert_str_eq(err->message, "not a munge credential (empty)");
	g_clear_error(&err);
	g_bytes_unref(tok);
	smig_auth_free(m);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("wire");
	TCase *tc = tcase_create("frames");
	TCase *tn = tcase_create("sockets");
	TCase *tm;
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 10);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_getters);
	tcase_add_test(tc, test_stream);
	tcase_add_test(tc, test_bad_header);
	tcase_add_test(tc, test_bad_body);
	tcase_add_test(tc, test_non_normal);
	tcase_add_test(tc, test_encode_errors);
	suite_add_tcase(s, tc);

	tcase_set_timeout(tn, 20);
	tcase_add_checked_fixture(tn, setup, teardown);
	tcase_add_test(tn, test_socket_round_trip);
	tcase_add_test(tn, test_socket_truncated);
	tcase_add_test(tn, test_socket_large);
	tcase_add_test(tn, test_connect);
	suite_add_tcase(s, tn);

	/* Only with a munged to talk to: munge-test.sh runs this case. */
	if (getenv("SMIG_TEST_MUNGE_SOCKET")) {
		tm = tcase_create("munge");
		tcase_set_timeout(tm, 20);
		tcase_add_test(tm, test_munge);
		suite_add_tcase(s, tm);
	} else {
		fprintf(stderr, "wire-test: the munge case runs in munge-test.sh (SMIG_TEST_MUNGE_SOCKET is not set)\n");
	}

	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
