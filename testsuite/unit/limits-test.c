/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * limits-test.c - the balancer's resource caps, over loopback TCP
 *
 * A job's peers must not make the balancer in slurmctld use unbounded
 * memory or descriptors. Each cap of doc/design.md ("Resource limits") is
 * hit here on a real balancer with "none" credentials: a HELLO above a cap
 * is refused with a reason naming the value and the cap, a frame above the
 * body cap or a peer that never reads loses its connection, and the
 * balancer goes on serving others.
 */
#include "smig_config.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <check.h>
#include <glib.h>

#include "smig_auth.h"
#include "smig_balancer.h"
#include "smig_conf.h"
#include "smig_log.h"
#include "smig_wire.h"

#define JOB	42
#define OWNER	1000
#define ADMIN	64030
#define WAIT_MS	5000

/* Caps of smig_balancer.c, as documented in doc/design.md. */
#define CAP_RANKS	65536
#define CAP_NODES	16384
#define CAP_STEPS	4096
#define CAP_JOB_STEPS	256
#define NJOBS		64	/* jobs JOB..JOB+63, all of OWNER */
#define MAX_CONNS	65536	/* the cap when RLIMIT_NOFILE allows it */
#define SPARE_FDS	64	/* RLIMIT_NOFILE less the cap, below that */
#define CAP_CONNS	1024	/* set by smig_balancer_set_max_conns() */

static bool host_node_flags(void *ctx, const char *node, uint32_t *flags)
{
	*flags = 0;
	return true;
}

static bool host_job_owner(void *ctx, uint32_t job_id, uint32_t *uid)
{
	*uid = OWNER;
	return job_id >= JOB && job_id < JOB + NJOBS;
}

static void host_job_publish(void *ctx, uint32_t job_id, const char *text)
{
}

/* Log lines of the balancer, to check what it says about a peer. */
static GMutex log_lock;
static GString *log_text;
static size_t max_line;		/* longest line logged */

static void test_sink(smig_log_level_t level, const char *msg)
{
	g_mutex_lock(&log_lock);
	g_string_append_printf(log_text, "%.300s\n", msg);
	max_line = MAX(max_line, strlen(msg));
	g_mutex_unlock(&log_lock);
}

static bool log_has(const char *needle)
{
	gint64 end = g_get_monotonic_time() + WAIT_MS * 1000;
	bool found;

	for (;;) {
		g_mutex_lock(&log_lock);
		found = strstr(log_text->str, needle) != NULL;
		g_mutex_unlock(&log_lock);
		if (found || g_get_monotonic_time() > end)
			return found;
		g_usleep(20000);
	}
}

static smig_conf_t *conf;
static smig_auth_t *bal_auth, *user_auth;
static smig_balancer_t *bal;
static uint32_t poll_ms = 10000;	/* MigratePollInterval's default */
static uint32_t conn_cap;	/* 0: the cap derived from RLIMIT_NOFILE */

static void setup(void)
{
	smig_host_ops_t ops = {
		.node_flags = host_node_flags,
		.job_owner = host_job_owner,
		.job_publish = host_job_publish,
	};
	GError *err = NULL;

	log_text = g_string_new(NULL);
	smig_log_set_sink(test_sink, SMIG_LOG_DEBUG);
	conf = smig_conf_new();
	g_free(conf->balancer_addr);
	conf->balancer_addr = g_strdup("127.0.0.1");
	conf->port = 0;
	conf->poll_interval_ms = poll_ms;
	bal_auth = smig_auth_none_new(ADMIN, ADMIN);
	user_auth = smig_auth_none_new(OWNER, OWNER);
	bal = smig_balancer_new(conf, &ops, bal_auth, ADMIN);
	smig_balancer_set_max_conns(bal, conn_cap);
	ck_assert_msg(smig_balancer_start(bal, &err), "%s",
		      err ? err->message : "");
}

/* Ticks every 20 ms: unregistered peers are closed after 300 ms silent. */
static void setup_fast_poll(void)
{
	poll_ms = 20;
	setup();
}

/* Ticks every 2 s: idle peers stay for 30 s (thousands of sockets). */
static void setup_slow_poll(void)
{
	poll_ms = 10000;
	setup();
}

/* As setup_slow_poll, with the connection cap lowered to CAP_CONNS. */
static void setup_conn_cap(void)
{
	conn_cap = CAP_CONNS;
	setup_slow_poll();
}

static void teardown(void)
{
	smig_balancer_free(bal);
	smig_auth_free(bal_auth);
	smig_auth_free(user_auth);
	smig_conf_free(conf);
	smig_log_set_sink(NULL, SMIG_LOG_INFO);
	g_string_free(log_text, true);
}

static int peer(void)
{
	GError *err = NULL;
	int fd = smig_wire_connect("127.0.0.1", smig_balancer_port(bal),
				   WAIT_MS, &err);

	ck_assert_msg(fd >= 0, "%s", err ? err->message : "");
	return fd;
}

static void send_body(int fd, smig_msg_type_t type, GVariantBuilder *vb)
{
	smig_msg_t *m = smig_msg_new(type, g_variant_builder_end(vb));
	GError *err = NULL;

	ck_assert_msg(smig_wire_send(fd, user_auth, m, &err), "%s",
		      err ? err->message : "");
	smig_msg_free(m);
}

static void hello_srun_job(int fd, uint32_t job, uint32_t step,
			   uint32_t ntasks, const char *request,
			   const char *nodes, const char *cpus)
{
	GVariantBuilder vb;

	g_variant_builder_init(&vb, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(&vb, "{sv}", "job", g_variant_new_uint32(job));
	g_variant_builder_add(&vb, "{sv}", "step", g_variant_new_uint32(step));
	g_variant_builder_add(&vb, "{sv}", "request",
			      g_variant_new_string(request));
	g_variant_builder_add(&vb, "{sv}", "ntasks",
			      g_variant_new_uint32(ntasks));
	g_variant_builder_add(&vb, "{sv}", "alloc_nodes",
			      g_variant_new_string(nodes));
	g_variant_builder_add(&vb, "{sv}", "alloc_cpus",
			      g_variant_new_string(cpus));
	send_body(fd, SMIG_MSG_HELLO_SRUN, &vb);
}

static void hello_srun(int fd, uint32_t step, uint32_t ntasks,
		       const char *request, const char *nodes,
		       const char *cpus)
{
	hello_srun_job(fd, JOB, step, ntasks, request, nodes, cpus);
}

/* The REFUSED reason that answers on fd (g_free()), or NULL if none came
 * within ms (an accepted HELLO has no answer). */
static char *refusal(int fd, int ms)
{
	GError *err = NULL;
	smig_msg_t *m = smig_wire_recv(fd, user_auth, ms, &err);
	const char *reason = NULL;
	char *r;

	if (!m) {
		ck_assert_msg(strstr(err->message, "timed out"), "%s",
			      err->message);
		g_error_free(err);
		return NULL;
	}
	ck_assert_str_eq(smig_msg_type_name(m->type), "REFUSED");
	ck_assert(smig_msg_get_str(m, "reason", &reason));
	r = g_strdup(reason);
	smig_msg_free(m);
	return r;
}

/* The balancer still serves: a new peer gets an answer. */
static void still_serving(void)
{
	int fd = peer();
	char *why;

	hello_srun(fd, 1, 0, "mode=auto", "node1", "2");
	why = refusal(fd, WAIT_MS);
	ck_assert_str_eq(why, "ntasks=0: 1 to 65536 accepted");
	g_free(why);
	close(fd);
}

/*
 * Wait until the balancer has accepted fd: a message it refuses comes back.
 * The balancer accepts one connection per wake-up and the listen queue holds
 * 128: a client that runs ahead waits for SYN retransmissions (seconds).
 */
static void sync_peer(int fd)
{
	GVariantBuilder vb;
	char *why;

	g_variant_builder_init(&vb, G_VARIANT_TYPE_VARDICT);
	send_body(fd, SMIG_MSG_COMMIT, &vb);
	why = refusal(fd, WAIT_MS);
	ck_assert_msg(why, "no answer to a COMMIT");
	g_free(why);
}

/* Raise the descriptor limit to n; RET false if the hard limit is lower. */
static bool fds_at_least(rlim_t n)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_max < n)
		return false;
	rl.rlim_cur = rl.rlim_max;
	return setrlimit(RLIMIT_NOFILE, &rl) == 0;
}

START_TEST(test_ranks_cap)
{
	int fd = peer();
	char *why;

	hello_srun(fd, 0, CAP_RANKS + 1, "mode=auto", "node1", "2");
	why = refusal(fd, WAIT_MS);
	ck_assert_str_eq(why, "ntasks=65537: 1 to 65536 accepted");
	g_free(why);
	close(fd);
	ck_assert(log_has("refused HELLO_SRUN from uid=1000"));
	still_serving();
}
END_TEST

START_TEST(test_agent_ranks_cap)
{
	uint32_t *ranks = g_new0(uint32_t, CAP_RANKS + 1);
	GVariantBuilder vb;
	int fd = peer();
	char *why;

	for (uint32_t i = 0; i <= CAP_RANKS; i++)
		ranks[i] = i;
	g_variant_builder_init(&vb, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(&vb, "{sv}", "job", g_variant_new_uint32(JOB));
	g_variant_builder_add(&vb, "{sv}", "step", g_variant_new_uint32(0));
	g_variant_builder_add(&vb, "{sv}", "node",
			      g_variant_new_string("node1"));
	g_variant_builder_add(&vb, "{sv}", "ranks",
			      g_variant_new_fixed_array(G_VARIANT_TYPE_UINT32,
							ranks, CAP_RANKS + 1,
							sizeof(uint32_t)));
	send_body(fd, SMIG_MSG_HELLO_AGENT, &vb);
	why = refusal(fd, WAIT_MS);
	ck_assert_str_eq(why, "node=node1: 65537 ranks (1 to 65536 accepted)");
	g_free(why);
	g_free(ranks);
	close(fd);
	still_serving();
}
END_TEST

START_TEST(test_nodes_cap)
{
	int fd = peer();
	char *why;

	hello_srun(fd, 0, 4, "mode=auto", "n[1-16385]", "1(x16385)");
	why = refusal(fd, WAIT_MS);
	ck_assert_str_eq(why,
			 "alloc_nodes=n[1-16385]: 16385 nodes (1 to 16384 accepted)");
	g_free(why);
	close(fd);
	still_serving();
}
END_TEST

START_TEST(test_body_cap)
{
	/* A header announcing one byte more than the cap: never read. */
	uint8_t hdr[SMIG_WIRE_HEADER_SIZE] = {
		'S', 'M', 'I', 'G', 0, SMIG_WIRE_VERSION,
		0, SMIG_MSG_HELLO_SRUN,
	};
	uint32_t len = SMIG_WIRE_MAX_BODY + 1;
	GError *err = NULL;
	smig_msg_t *m;
	int fd = peer();

	hdr[8] = len >> 24;
	hdr[9] = len >> 16;
	hdr[10] = len >> 8;
	hdr[11] = len;
	ck_assert_int_eq(send(fd, hdr, sizeof(hdr), MSG_NOSIGNAL),
			 sizeof(hdr));
	m = smig_wire_recv(fd, user_auth, WAIT_MS, &err);
	ck_assert(!m);
	ck_assert_msg(strstr(err->message, "connection closed"), "%s",
		      err->message);
	g_error_free(err);
	close(fd);
	ck_assert(log_has("body of 1048577 bytes"));
	still_serving();
}
END_TEST

START_TEST(test_steps_cap)
{
	int *fds = g_new(int, CAP_STEPS + 64);
	unsigned n = 0;
	char *why = NULL;

	if (!fds_at_least(2 * CAP_STEPS + 256)) {
		fprintf(stderr, "limits-test: steps cap not tested: RLIMIT_NOFILE below %u\n",
			2 * CAP_STEPS + 256);
		g_free(fds);
		return;
	}
	/* 128 steps per job: under the per-job cap. */
	for (; n < CAP_STEPS; n++) {
		fds[n] = peer();
		hello_srun_job(fds[n], JOB + n / 128, n, 1, "mode=auto",
			       "node1", "2");
		if (n % 32 == 31)
			sync_peer(fds[n]);
	}
	/* Accepted HELLOs have no answer: go on until the cap answers. */
	for (; n < CAP_STEPS + 64 && !why; n++) {
		fds[n] = peer();
		hello_srun_job(fds[n], JOB + NJOBS - 1, n, 1, "mode=auto",
			       "node1", "2");
		why = refusal(fds[n], 200);
	}
	ck_assert_msg(why, "no refusal after %u steps", n);
	ck_assert_str_eq(why, "too many steps tracked (4096)");
	g_free(why);
	for (unsigned i = 0; i < n; i++)
		close(fds[i]);
	g_free(fds);
	still_serving();
}
END_TEST

START_TEST(test_job_steps_cap)
{
	int fds[CAP_JOB_STEPS + 65];
	unsigned n = 0;
	char *why = NULL;

	for (; n < CAP_JOB_STEPS; n++) {
		fds[n] = peer();
		hello_srun(fds[n], n, 1, "mode=auto", "node1", "2");
		if (n % 32 == 31)
			sync_peer(fds[n]);
	}
	for (; n < CAP_JOB_STEPS + 64 && !why; n++) {
		fds[n] = peer();
		hello_srun(fds[n], n, 1, "mode=auto", "node1", "2");
		why = refusal(fds[n], 200);
	}
	ck_assert_msg(why, "no refusal after %u steps of one job", n);
	ck_assert_str_eq(why, "too many steps of JobId=42 tracked (256)");
	g_free(why);
	/* Another job of the same user still gets in. */
	hello_srun_job(fds[0], JOB + 1, 0, 1, "mode=auto", "node1", "2");
	why = refusal(fds[0], WAIT_MS);
	ck_assert_str_eq(why, "connection already registered");
	g_free(why);
	fds[n] = peer();
	hello_srun_job(fds[n], JOB + 1, 0, 1, "mode=auto", "node1", "2");
	ck_assert(!refusal(fds[n], 300));
	n++;
	for (unsigned i = 0; i < n; i++)
		close(fds[i]);
}
END_TEST

START_TEST(test_conns_cap)
{
	int *fds = g_new(int, CAP_CONNS + 1);
	GError *err = NULL;
	smig_msg_t *m;

	if (!fds_at_least(2 * CAP_CONNS + 256)) {
		fprintf(stderr, "limits-test: connection cap not tested: RLIMIT_NOFILE below %u\n",
			2 * CAP_CONNS + 256);
		g_free(fds);
		return;
	}
	for (unsigned i = 0; i <= CAP_CONNS; i++) {
		fds[i] = peer();
		if (i % 32 == 31 && i < CAP_CONNS)
			sync_peer(fds[i]);
	}
	/* The listen queue is FIFO: the last one is over the cap. */
	m = smig_wire_recv(fds[CAP_CONNS], user_auth, WAIT_MS, &err);
	ck_assert(!m);
	ck_assert_msg(strstr(err->message, "connection closed"), "%s",
		      err->message);
	g_error_free(err);
	ck_assert(log_has("too many connections (1024)"));
	for (unsigned i = 0; i <= CAP_CONNS; i++)
		close(fds[i]);
	g_free(fds);
	/* Closed connections are reaped: room again. */
	g_usleep(200000);
	still_serving();
}
END_TEST

START_TEST(test_conns_derived)
{
	struct rlimit rl;
	rlim_t want = MAX_CONNS + SPARE_FDS;
	char *line;

	/* The balancer raised the soft limit to the hard one, to the cap. */
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want)
		ck_assert_uint_ge(rl.rlim_cur, want);
	else
		ck_assert_uint_eq(rl.rlim_cur, rl.rlim_max);
	line = g_strdup_printf("at most %u connections (RLIMIT_NOFILE=%llu)",
			       rl.rlim_cur >= want ? MAX_CONNS :
			       (unsigned) (rl.rlim_cur - SPARE_FDS),
			       (unsigned long long) rl.rlim_cur);
	ck_assert_msg(log_has(line), "no \"%s\" in:\n%s", line,
		      log_text->str);
	g_free(line);
}
END_TEST

/* Occurrences of needle in the log so far. */
static unsigned log_count(const char *needle)
{
	unsigned n = 0;

	g_mutex_lock(&log_lock);
	for (const char *p = log_text->str; (p = strstr(p, needle)); p++)
		n++;
	g_mutex_unlock(&log_lock);
	return n;
}

/*
 * Out of descriptors, the balancer stops accepting for a second (one log
 * line, no busy loop), then takes the waiting connection.
 */
START_TEST(test_accept_emfile)
{
	struct sockaddr_in sin = {
		.sin_family = AF_INET,
		.sin_port = htons(smig_balancer_port(bal)),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	struct rlimit rl, low;
	int first = peer(), fd, next;

	/* The balancer's loop runs (glib makes its wake-up pipes lazily). */
	sync_peer(first);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	/* The lowest free descriptor becomes the limit: accept4 gets EMFILE. */
	next = dup(fd);
	ck_assert_int_ge(next, 0);
	close(next);
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	low = rl;
	low.rlim_cur = next;
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
	/* Completed by the kernel's listen queue, accepted or not. */
	ck_assert_int_eq(connect(fd, (struct sockaddr *) &sin, sizeof(sin)),
			 0);
	ck_assert(log_has("Too many open files (1 connections open): not accepting for 1000 ms"));
	g_usleep(500000);
	ck_assert_uint_eq(log_count("not accepting for"), 1);
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
	/*
	 * Taken after the pause: it gets an answer. Valgrind only emulates
	 * the limit: its accept4 closes the new fd and returns EMFILE, so
	 * that connection is gone there; a new one must work anyway.
	 */
	if (!strstr(g_getenv("LD_PRELOAD") ?: "", "valgrind"))
		sync_peer(fd);
	close(fd);
	fd = peer();
	sync_peer(fd);
	ck_assert_uint_eq(log_count("not accepting for"), 1);
	close(fd);
	close(first);
	still_serving();
}
END_TEST

START_TEST(test_output_queue_cap)
{
	/* Each COMMIT gets a REFUSED of ~100 bytes; we never read them. */
	GVariantBuilder vb;
	smig_msg_t *m;
	GError *err = NULL;
	GBytes *frame;
	const uint8_t *p;
	gsize len;
	unsigned sent = 0;
	int fd = peer();

	g_variant_builder_init(&vb, G_VARIANT_TYPE_VARDICT);
	m = smig_msg_new(SMIG_MSG_COMMIT, g_variant_builder_end(&vb));
	frame = smig_wire_encode(user_auth, m, &err);
	ck_assert(frame);
	smig_msg_free(m);
	p = g_bytes_get_data(frame, &len);
	for (; sent < 2000000; sent++)
		if (send(fd, p, len, MSG_NOSIGNAL) != (ssize_t) len)
			break;
	/* The balancer gives up on us, not its memory. */
	ck_assert_msg(sent < 2000000, "the balancer kept queueing for a peer that never reads");
	ck_assert(log_has("peer does not read (output queue full)"));
	g_bytes_unref(frame);
	close(fd);
	still_serving();
}
END_TEST

/*
 * Bytes the balancer has not read yet from its established connections:
 * the rx_queue of every socket on its port in /proc/self/net/tcp (the
 * balancer runs in this process). RET -1 if that cannot be read
 */
static long balancer_unread(void)
{
	char *text = NULL, **lines;
	unsigned port = smig_balancer_port(bal);
	long sum = 0;

	if (!g_file_get_contents("/proc/self/net/tcp", &text, NULL, NULL))
		return -1;
	lines = g_strsplit(text, "\n", -1);
	for (char **l = lines + 1; *l; l++) {
		unsigned lport, st;
		unsigned long tx, rx;

		/* sl: local_ip:port remote_ip:port st tx_queue:rx_queue */
		if (sscanf(*l, " %*u: %*x:%x %*x:%*x %x %lx:%lx", &lport, &st,
			   &tx, &rx) == 4 && lport == port && st == 0x01)
			sum += rx;
	}
	g_strfreev(lines);
	g_free(text);
	return sum;
}

/* How many of FDS the balancer closed (EOF or reset, our bytes unread). */
static unsigned count_closed(const int *fds, unsigned n)
{
	unsigned closed = 0;

	for (unsigned i = 0; i < n; i++) {
		struct pollfd p = { .fd = fds[i], .events = POLLIN };
		char c;

		/* The balancer never writes to these: readable means closed. */
		if (poll(&p, 1, 0) == 1 &&
		    recv(fds[i], &c, 1, MSG_DONTWAIT | MSG_PEEK) <= 0)
			closed++;
	}
	return closed;
}

START_TEST(test_input_total_cap)
{
	/* 80 peers each leave a 1 MiB frame one byte short: 80 MiB held if
	 * nothing stopped them, 64 MiB is the cap over all connections. A
	 * frame held is its header and body, 1 MiB + 11 bytes: 63 of them
	 * fit under the cap, a 64th does not. */
	enum { NPEERS = 80, FIT = 63 };
	uint32_t len = SMIG_WIRE_MAX_BODY;
	uint8_t hdr[SMIG_WIRE_HEADER_SIZE] = {
		'S', 'M', 'I', 'G', 0, SMIG_WIRE_VERSION,
		0, SMIG_MSG_HELLO_SRUN,
		len >> 24, len >> 16, len >> 8, len,
	};
	char *body = g_malloc0(len - 1);
	int fds[NPEERS];
	unsigned closed = 0, killed;
	gint64 end;
	long unread;

	for (unsigned i = 0; i < NPEERS; i++) {
		fds[i] = peer();
		ck_assert_int_eq(send(fds[i], hdr, sizeof(hdr), MSG_NOSIGNAL),
				 sizeof(hdr));
		/* The balancer may close it midway: that is the point. */
		for (size_t off = 0; off < len - 1; ) {
			ssize_t n = send(fds[i], body + off, len - 1 - off,
					 MSG_NOSIGNAL);

			if (n <= 0)
				break;
			off += n;
		}
	}
	/*
	 * Count once the balancer has read every byte it was sent (the
	 * kernel still holds megabytes when the last send returns), and has
	 * closed every connection it logged as closed.
	 */
	end = g_get_monotonic_time() + 6 * WAIT_MS * 1000;
	while ((unread = balancer_unread()) > 0 &&
	       g_get_monotonic_time() < end)
		g_usleep(20000);
	ck_assert_msg(unread == 0, "the balancer left %ld bytes unread",
		      unread);
	ck_assert(log_has("bytes of incomplete messages held over all connections (at most 67108864): closing it"));
	killed = log_count("closed: input buffers full");
	end = g_get_monotonic_time() + WAIT_MS * 1000;
	while ((closed = count_closed(fds, NPEERS)) < killed &&
	       g_get_monotonic_time() < end)
		g_usleep(20000);
	/* Exactly the peers over the cap were closed, each for its own
	 * bytes: 63 full frames stay, every other peer was closed. */
	ck_assert_uint_eq(closed, killed);
	ck_assert_uint_eq(closed, NPEERS - FIT);
	for (unsigned i = 0; i < NPEERS; i++)
		close(fds[i]);
	g_free(body);
	/* Their buffers are freed with them: room again. */
	g_usleep(200000);
	still_serving();
}
END_TEST

START_TEST(test_idle_unregistered)
{
	/* Silent peers hold no slot for long; one that spoke stays. */
	int idle = peer(), srun = peer();
	GError *err = NULL;
	smig_msg_t *m;

	hello_srun(srun, 0, 1, "mode=auto", "node1", "2");
	m = smig_wire_recv(idle, user_auth, WAIT_MS, &err);
	ck_assert(!m);
	ck_assert_msg(strstr(err->message, "connection closed"), "%s",
		      err->message);
	g_clear_error(&err);
	ck_assert(log_has("closed: no message from the peer"));
	/* The srun's connection is open: it gets an answer. */
	hello_srun(srun, 0, 1, "mode=auto", "node1", "2");
	g_free(refusal(srun, WAIT_MS));
	close(idle);
	close(srun);
}
END_TEST

START_TEST(test_reason_bounded)
{
	/* A refusal quotes the bad value: at most 512 bytes of it. */
	char *big = g_strnfill(200000, 'x'), *why;
	int fd = peer();

	hello_srun(fd, 0, 1, big, "node1", "2");
	why = refusal(fd, WAIT_MS);
	ck_assert(why);
	ck_assert_uint_le(strlen(why), 600);
	ck_assert_msg(g_str_has_prefix(why, "request=xxxx"), "%s", why);
	ck_assert_msg(strstr(why, " bytes)"), "%s", why);
	/* The log line too: "refused HELLO_SRUN from ...: " + the reason. */
	ck_assert_uint_le(max_line, 800);
	g_free(why);
	g_free(big);
	close(fd);
}
END_TEST

static Suite *limits_suite(void)
{
	Suite *s = suite_create("limits");
	TCase *tc = tcase_create("caps");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_ranks_cap);
	tcase_add_test(tc, test_agent_ranks_cap);
	tcase_add_test(tc, test_nodes_cap);
	tcase_add_test(tc, test_body_cap);
	tcase_add_test(tc, test_output_queue_cap);
	tcase_add_test(tc, test_reason_bounded);
	tcase_add_test(tc, test_input_total_cap);
	tcase_add_test(tc, test_conns_derived);
	tcase_add_test(tc, test_accept_emfile);
	suite_add_tcase(s, tc);
	tc = tcase_create("idle");
	tcase_add_checked_fixture(tc, setup_fast_poll, teardown);
	tcase_add_test(tc, test_idle_unregistered);
	suite_add_tcase(s, tc);
	/* Thousands of sockets each. */
	tc = tcase_create("fds");
	tcase_add_checked_fixture(tc, setup_slow_poll, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_job_steps_cap);
	tcase_add_test(tc, test_steps_cap);
	suite_add_tcase(s, tc);
	tc = tcase_create("conns");
	tcase_add_checked_fixture(tc, setup_conn_cap, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_conns_cap);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(limits_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
