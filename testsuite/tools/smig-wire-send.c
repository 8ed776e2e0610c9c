/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig-wire-send.c - send one crafted message to the balancer, print the
 * answer (a test tool: the security tests play a hostile peer with it)
 *
 * usage: smig-wire-send [OPTIONS] TYPE [KEY=T:VALUE...]
 *                       [--then TYPE [KEY=T:VALUE...]]...
 *        smig-wire-send [OPTIONS] --replay FILE
 *   TYPE            message type: HELLO_SRUN, RELAUNCH_ACK, REQUEST, ... or
 *                   its number
 *   KEY=T:VALUE     a body field; T is u (uint32), t (uint64), i (int32),
 *                   b (bool: true/false), s (string), au (uint32 list: 1,2)
 *   --then          another message after this one, on the same connection
 *                   (e.g. a HELLO that registers it, then the attack)
 *   --host H        balancer address (default $SMIG_BALANCER_ADDR)
 *   --port P        balancer port (default $SMIG_MIGRATE_PORT)
 *   --munge-socket S  munged's socket (default munge's own)
 *   --bad-token     seal with a forged credential instead of munge's
 *   --save FILE     also write the exact frame bytes sent to FILE
 *   --replay FILE   send FILE's bytes as they are (a frame saved before)
 *   --wait MS       how long to wait for an answer (default 5000)
 *
 * Prints a line per answer: "REFUSED what=... reason=...", "<TYPE> <body>";
 * the last line is the answer to the last message, "CLOSED <why>" (the
 * balancer closed the connection) or "NO ANSWER". The balancer handles a
 * connection's messages in order, so an earlier message that was refused
 * shows as a REFUSED line before it.
 * Exit: 0 an answer or CLOSED was printed, 1 error, 2 usage.
 */
#include "smig_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>

#include "smig_auth.h"
#include "smig_error.h"
#include "smig_wire.h"

static void usage(void)
{
	fprintf(stderr,
		"usage: smig-wire-send [--host H] [--port P] [--munge-socket S] [--bad-token]\n"
		"                      [--save FILE] [--wait MS] TYPE [KEY=T:VALUE...]\n"
		"                      [--then TYPE [KEY=T:VALUE...]]...\n"
		"       smig-wire-send [--host H] [--port P] [--wait MS] --replay FILE\n"
		"  T: u (uint32), t (uint64), i (int32), b (bool), s (string), au (uint32 list)\n");
	exit(2);
}

static bool parse_type(const char *text, smig_msg_type_t *type)
{
	char *end;
	unsigned long n = strtoul(text, &end, 10);

	if (*text && !*end && n > 0 && n < SMIG_MSG_TYPE_MAX) {
		*type = (smig_msg_type_t) n;
		return true;
	}
	for (int t = 1; t < SMIG_MSG_TYPE_MAX; t++) {
		if (!g_ascii_strcasecmp(text, smig_msg_type_name(t))) {
			*type = (smig_msg_type_t) t;
			return true;
		}
	}
	return false;
}

static bool parse_u64(const char *text, uint64_t max, uint64_t *out)
{
	guint64 v;

	if (!g_ascii_string_to_unsigned(text, 10, 0, max, &v, NULL))
		return false;
	*out = v;
	return true;
}

/* One "key=T:value" into the builder. RET false with a message on stderr */
static bool add_field(GVariantBuilder *vb, const char *arg)
{
	const char *eq = strchr(arg, '='), *colon, *v;
	char *key, *t;
	GVariant *val = NULL;
	uint64_t u;
	gint64 i;

	if (!eq || eq == arg || !(colon = strchr(eq + 1, ':'))) {
		fprintf(stderr, "smig-wire-send: %s: not KEY=T:VALUE\n", arg);
		return false;
	}
	key = g_strndup(arg, eq - arg);
	t = g_strndup(eq + 1, colon - eq - 1);
	v = colon + 1;
	if (!strcmp(t, "u") && parse_u64(v, UINT32_MAX, &u)) {
		val = g_variant_new_uint32((uint32_t) u);
	} else if (!strcmp(t, "t") && parse_u64(v, UINT64_MAX, &u)) {
		val = g_variant_new_uint64(u);
	} else if (!strcmp(t, "i") &&
		   g_ascii_string_to_signed(v, 10, INT32_MIN, INT32_MAX, &i,
					    NULL)) {
		val = g_variant_new_int32((int32_t) i);
	} else if (!strcmp(t, "b") && (!strcmp(v, "true") ||
				       !strcmp(v, "false"))) {
		val = g_variant_new_boolean(!strcmp(v, "true"));
	} else if (!strcmp(t, "s")) {
		val = g_variant_new_string(v);
	} else if (!strcmp(t, "au")) {
		char **parts = g_strsplit(v, ",", -1);
		GArray *a = g_array_new(false, false, sizeof(uint32_t));
		bool ok = true;

		for (char **p = parts; *p && **p; p++) {
			uint32_t x;

			if (!parse_u64(*p, UINT32_MAX, &u)) {
				ok = false;
				break;
			}
			x = (uint32_t) u;
			g_array_append_val(a, x);
		}
		if (ok)
			val = g_variant_new_fixed_array(G_VARIANT_TYPE_UINT32,
							a->data, a->len,
							sizeof(uint32_t));
		g_array_unref(a);
		g_strfreev(parts);
	}
	if (!val)
		fprintf(stderr, "smig-wire-send: %s: bad value for type %s (u t i b s au)\n",
			arg, t);
	else
		g_variant_builder_add(vb, "{sv}", key, val);
	g_free(key);
	g_free(t);
	return val != NULL;
}

/* A frame whose token is not a credential at all: what a forger sends. */
static GBytes *forged_frame(smig_msg_type_t type, GVariant *body)
{
	GByteArray *f = g_byte_array_new();
	const char *token = "MUNGE:AwQFAAD0forged-credential-not-from-munged:";
	uint8_t hdr[SMIG_WIRE_HEADER_SIZE];
	size_t tlen = strlen(token) + 2 + g_variant_get_size(body);

	hdr[0] = 'S'; hdr[1] = 'M'; hdr[2] = 'I'; hdr[3] = 'G';
	hdr[4] = 0; hdr[5] = SMIG_WIRE_VERSION;
	hdr[6] = (uint8_t) (type >> 8); hdr[7] = (uint8_t) type;
	hdr[8] = (uint8_t) (tlen >> 24); hdr[9] = (uint8_t) (tlen >> 16);
	hdr[10] = (uint8_t) (tlen >> 8); hdr[11] = (uint8_t) tlen;
	g_byte_array_append(f, hdr, sizeof(hdr));
	g_byte_array_append(f, (const guint8 *) token, strlen(token));
	g_byte_array_append(f, hdr + 6, 2);
	g_byte_array_append(f, g_variant_get_data(body),
			    g_variant_get_size(body));
	return g_byte_array_free_to_bytes(f);
}

/*
 * The frame of one message: ARGV[0] is its type, the rest its fields.
 * RET the frame, or NULL with ERR set (or with a message on stderr and ERR
 * unset: bad usage)
 */
static GBytes *message_frame(smig_auth_t *auth, char **argv, int argc,
			     bool bad_token, smig_msg_type_t *type,
			     GError **err)
{
	GVariantBuilder vb;
	GVariant *body;
	smig_msg_t *msg;
	GBytes *frame;

	if (!parse_type(argv[0], type)) {
		fprintf(stderr, "smig-wire-send: %s: not a message type\n",
			argv[0]);
		usage();
	}
	g_variant_builder_init(&vb, G_VARIANT_TYPE_VARDICT);
	for (int i = 1; i < argc; i++) {
		if (!add_field(&vb, argv[i])) {
			g_variant_builder_clear(&vb);
			return NULL;
		}
	}
	body = g_variant_ref_sink(g_variant_builder_end(&vb));
	if (bad_token) {
		frame = forged_frame(*type, body);
	} else {
		msg = smig_msg_new(*type, body);
		frame = smig_wire_encode(auth, msg, err);
		smig_msg_free(msg);
	}
	g_variant_unref(body);
	return frame;
}

static bool write_all(int fd, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= n;
	}
	return true;
}

int main(int argc, char **argv)
{
	const char *host = g_getenv("SMIG_BALANCER_ADDR");
	const char *port_env = g_getenv("SMIG_MIGRATE_PORT");
	const char *msock = NULL, *save = NULL, *replay = NULL;
	bool bad_token = false;
	uint64_t port = 0, wait_ms = 5000;
	smig_msg_type_t type = 0;
	smig_auth_t *auth;
	GError *err = NULL;
	GBytes *frame = NULL;
	smig_msg_t *reply = NULL;
	bool last;
	int i, fd, rc = 1;

	if (port_env && !parse_u64(port_env, 65535, &port))
		port = 0;
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *o = argv[i];
		const char *arg = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(o, "--bad-token")) {
			bad_token = true;
			continue;
		}
		if (!arg)
			usage();
		i++;
		if (!strcmp(o, "--host"))
			host = arg;
		else if (!strcmp(o, "--port") && parse_u64(arg, 65535, &port))
			;
		else if (!strcmp(o, "--munge-socket"))
			msock = arg;
		else if (!strcmp(o, "--save"))
			save = arg;
		else if (!strcmp(o, "--replay"))
			replay = arg;
		else if (!strcmp(o, "--wait") &&
			 parse_u64(arg, 600000, &wait_ms))
			;
		else
			usage();
	}
	if (!host || !port) {
		fprintf(stderr, "smig-wire-send: no balancer: give --host and --port (or SMIG_BALANCER_ADDR, SMIG_MIGRATE_PORT)\n");
		return 2;
	}
	if (!(auth = smig_auth_munge_new(msock, &err))) {
		fprintf(stderr, "smig-wire-send: munge: %s\n", err->message);
		return 1;
	}

	if (replay) {
		char *data;
		gsize len;

		if (i != argc)
			usage();
		if (!g_file_get_contents(replay, &data, &len, &err)) {
			fprintf(stderr, "smig-wire-send: %s\n", err->message);
			goto out_free_auth;
		}
		frame = g_bytes_new_take(data, len);
	} else {
		GByteArray *all = g_byte_array_new();

		/* TYPE fields... [--then TYPE fields...]... */
		while (i < argc) {
			int end = i + 1;
			GBytes *one;

			while (end < argc && strcmp(argv[end], "--then"))
				end++;
			one = message_frame(auth, argv + i, end - i,
					    bad_token, &type, &err);
			if (!one) {
				g_byte_array_unref(all);
				if (!err)
					return 2;
				fprintf(stderr, "smig-wire-send: %s\n",
					err->message);
				goto out_free_auth;
			}
			g_byte_array_append(all, g_bytes_get_data(one, NULL),
					    g_bytes_get_size(one));
			g_bytes_unref(one);
			i = end + 1;
			if (end < argc && i >= argc) {
				fprintf(stderr, "smig-wire-send: --then without a message\n");
				usage();
			}
		}
		if (!type) {
			fprintf(stderr, "smig-wire-send: (none): not a message type\n");
			usage();
		}
		frame = g_byte_array_free_to_bytes(all);
	}
	if (save && !g_file_set_contents(save, g_bytes_get_data(frame, NULL),
					 g_bytes_get_size(frame), &err)) {
		fprintf(stderr, "smig-wire-send: %s\n", err->message);
		goto out_free_frame;
	}

	if ((fd = smig_wire_connect(host, (uint16_t) port, 5000, &err)) < 0) {
		fprintf(stderr, "smig-wire-send: %s\n", err->message);
		goto out_free_frame;
	}
	if (!write_all(fd, g_bytes_get_data(frame, NULL),
		       g_bytes_get_size(frame))) {
		/* The balancer may close before it read all: say so. */
		printf("CLOSED write: %s\n", g_strerror(errno));
		rc = 0;
		goto out_close;
	}
	/* Answers until the one to the last message (it refers to its type,
	 * or is not a refusal: the REPLY to a REQUEST or QUERY). */
	for (;;) {
		const char *what = "", *reason = "";

		reply = smig_wire_recv(fd, auth, (int) wait_ms, &err);
		if (!reply)
			break;
		if (reply->type == SMIG_MSG_REFUSED) {
			smig_msg_get_str(reply, "what", &what);
			smig_msg_get_str(reply, "reason", &reason);
			printf("REFUSED what=%s reason=%s\n", what, reason);
		} else {
			char *text = g_variant_print(reply->body, true);

			printf("%s %s\n", smig_msg_type_name(reply->type), text);
			g_free(text);
		}
		fflush(stdout);
		last = !type || reply->type != SMIG_MSG_REFUSED ||
		       !strcmp(what, smig_msg_type_name(type));
		smig_msg_free(reply);
		if (last)
			break;
	}
	rc = 0;
	if (reply)
		;
	else if (g_error_matches(err, SMIG_ERROR, SMIG_ERROR_IO) &&
		 strstr(err->message, "timed out"))
		printf("NO ANSWER\n");
	else
		printf("CLOSED %s\n", err->message);
	g_clear_error(&err);
out_close:
	close(fd);
out_free_frame:
	g_bytes_unref(frame);
out_free_auth:
	g_clear_error(&err);
	smig_auth_free(auth);
	return rc;
}
