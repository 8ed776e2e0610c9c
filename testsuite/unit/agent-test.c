/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * agent-test.c - the node agent's protocol engine (smig_agent.c)
 *
 * tcase "engine": the test is the balancer. It listens on loopback, the
 * engine connects to it, and both run in the test's one thread: what the
 * engine sends is in the socket when its call returns. The host is a table
 * here with fake ranks 4 and 5 and a clock the test sets.
 * tcase "balancer": two engines (node1: ranks 0,1; node2: ranks 2,3) run a
 * capture round against a real balancer in-process, with the "none"
 * credentials, before and after the balancer restarts.
 */
#include "smig_config.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <check.h>
#include <glib.h>

#include "smig_agent.h"
#include "smig_auth.h"
#include "smig_balancer.h"
#include "smig_conf.h"
#include "smig_log.h"
#include "smig_policy.h"
#include "smig_wire.h"

#define JOB	42
#define STEP	3
#define OWNER	1000
#define ADMIN	64030
#define WAIT_MS	3000

/* ------------------------------------------------------------ the host */

typedef struct host {
	GMutex lock;
	GCond cond;
	GString *log;		/* "prepare 1 3000;capture 1 12;..." */
	int64_t now;		/* us; the clock of tcase "engine" */
	bool real_clock;
	gint answer;		/* atomic: notify answers for the ranks at once */
	smig_agent_t *engine;
	const uint32_t *ranks;
	uint32_t nranks;
	int verify_rc;		/* image_verify of the second rank */
	int handoff_rc;
	unsigned nsamples;
} host_t;

static G_GNUC_PRINTF(2, 3) void host_logf(host_t *h, const char *fmt, ...)
{
	va_list ap;

	g_mutex_lock(&h->lock);
	va_start(ap, fmt);
	g_string_append_vprintf(h->log, fmt, ap);
	va_end(ap);
	g_string_append_c(h->log, ';');
	g_cond_broadcast(&h->cond);
	g_mutex_unlock(&h->lock);
}

/* take_log - what the host saw since the last call (g_free) */
static char *take_log(host_t *h)
{
	char *s;

	g_mutex_lock(&h->lock);
	s = g_strdup(h->log->str);
	g_string_truncate(h->log, 0);
	g_mutex_unlock(&h->lock);
	return s;
}

static void check_log(host_t *h, const char *want)
{
	char *got = take_log(h);

	ck_assert_str_eq(got, want);
	g_free(got);
}

/* wait_log - wait until the host's log contains want */
static bool wait_log(host_t *h, const char *want)
{
	gint64 end = g_get_monotonic_time() + WAIT_MS * 1000;
	bool found;

	g_mutex_lock(&h->lock);
	while (!(found = strstr(h->log->str, want)) &&
	       g_cond_wait_until(&h->cond, &h->lock, end))
		;
	g_mutex_unlock(&h->lock);
	return found;
}

static void host_notify(void *p, smig_agent_op_t op, uint64_t gen,
			uint64_t arg)
{
	host_t *h = p;

	host_logf(h, "%s %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT,
		  smig_agent_op_name(op), gen, arg);
	if (!g_atomic_int_get(&h->answer))
		return;
	/* Fake ranks: each answers at once, as a rank's libsmig would. */
	for (uint32_t i = 0; i < h->nranks; i++) {
		if (op == SMIG_AGENT_PREPARE)
			smig_agent_count(h->engine, h->ranks[i], gen,
					 10 + h->ranks[i]);
		else if (op == SMIG_AGENT_CAPTURE)
			smig_agent_done(h->engine, h->ranks[i], gen, 0, 64,
					NULL);
	}
}

static int64_t host_now(void *p)
{
	return ((host_t *) p)->real_clock ? g_get_monotonic_time()
					  : ((host_t *) p)->now;
}

static GVariant *host_sample(void *p)
{
	host_t *h = p;

	/* What the schema requires, and a count to tell samples apart. */
	return g_variant_new_parsed("{'job': <%u>, 'step': <%u>, "
				    "'ranks': <@au []>, 'cpu': <@ad []>, "
				    "'delay': <@ad []>, 'rss': <@at []>, "
				    "'iters': <@ad []>, 'n': <%u>}", JOB, STEP,
				    ++h->nsamples);
}

/* The first rank's image is good (100 bytes); the second's is verify_rc. */
static int host_verify(void *p, uint32_t rank, uint64_t gen, uint64_t *bytes,
		       char *errbuf, size_t errlen)
{
	host_t *h = p;

	host_logf(h, "verify %u %" G_GUINT64_FORMAT, rank, gen);
	if (rank == h->ranks[0] || !h->verify_rc) {
		*bytes = 100;
		return 0;
	}
	snprintf(errbuf, errlen, "rank%u.g%" G_GUINT64_FORMAT ".img: bad",
		 rank, gen);
	return h->verify_rc;
}

static void host_commit(void *p, uint64_t gen)
{
	host_logf(p, "good %" G_GUINT64_FORMAT, gen);
}

static int host_handoff(void *p, uint32_t rank, uint64_t gen, const char *to,
			const char *addr, uint16_t port, char *errbuf,
			size_t errlen)
{
	host_t *h = p;

	host_logf(h, "handoff %u %" G_GUINT64_FORMAT " %s %s:%u", rank, gen,
		  to, addr, port);
	if (h->handoff_rc)
		snprintf(errbuf, errlen, "node %s: refused", to);
	return h->handoff_rc;
}

static void host_partner(void *p, uint64_t gen, const char *node,
			 const char *addr, uint16_t port)
{
	host_logf(p, "partner %" G_GUINT64_FORMAT " %s %s:%u", gen, node, addr,
		  port);
}

/* The balancer runs as ADMIN here (the plugin: root or SlurmUser). */
static bool host_from_admin(void *p, const smig_msg_t *msg)
{
	return msg->uid == ADMIN;
}

static const smig_agent_ops_t ops = {
	.notify = host_notify,
	.now = host_now,
	.sample = host_sample,
	.image_verify = host_verify,
	.image_commit = host_commit,
	.handoff = host_handoff,
	.from_balancer = host_from_admin,
	.partner_copy = host_partner,
};

static void host_init(host_t *h, const uint32_t *ranks, uint32_t n)
{
	memset(h, 0, sizeof(*h));
	g_mutex_init(&h->lock);
	g_cond_init(&h->cond);
	h->log = g_string_new("");
	h->now = 1000 * G_USEC_PER_SEC;
	h->ranks = ranks;
	h->nranks = n;
}

static void host_fini(host_t *h)
{
	g_clear_pointer(&h->engine, smig_agent_free);
	g_string_free(h->log, true);
	g_mutex_clear(&h->lock);
	g_cond_clear(&h->cond);
}

/* ------------------------------------------ tcase "engine": a fake balancer */

static const uint32_t my_ranks[2] = { 4, 5 };
static host_t host;
static smig_auth_t *agent_auth, *bal_auth, *user_auth;
static int lfd = -1;		/* the fake balancer's listening socket */
static uint16_t lport;
static int bal = -1;		/* its connection to the engine */

static int listen_loopback(uint16_t *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert(fd >= 0 && !bind(fd, (struct sockaddr *) &sa, sizeof(sa)));
	ck_assert_int_eq(listen(fd, 4), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *) &sa, &len), 0);
	*port = ntohs(sa.sin_port);
	return fd;
}

/* pending - fd has something to read right now (no waiting) */
static bool pending(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0) == 1;
}

/* engine_new - the engine of h: node, step, 2 ranks, balancer port */
static smig_agent_t *engine_new(host_t *h, const char *node, uint32_t step,
				uint16_t port, uint16_t handoff_port,
				uint32_t sample_ms)
{
	smig_agent_cfg_t cfg = {
		.job_id = JOB, .step_id = step, .node = node,
		.ranks = h->ranks, .nranks = 2,
		.balancer_addr = "127.0.0.1", .port = port,
		.handoff_port = handoff_port,
		.sample_interval_ms = sample_ms, .auth = agent_auth,
	};

	return smig_agent_new(&cfg, &ops, h);
}

#define new_engine(port, handoff_port, sample_ms) \
	engine_new(&host, "node7", STEP, port, handoff_port, sample_ms)

static void setup(void)
{
	host_init(&host, my_ranks, 2);
	lfd = listen_loopback(&lport);
}

static void teardown(void)
{
	host_fini(&host);
	if (bal >= 0)
		close(bal);
	bal = -1;
	close(lfd);
}

static smig_msg_t *expect(int fd, smig_msg_type_t type)
{
	GError *err = NULL;
	smig_msg_t *m = smig_wire_recv(fd, bal_auth, WAIT_MS, &err);

	ck_assert_msg(m, "waiting for %s: %s", smig_msg_type_name(type),
		      err ? err->message : "");
	ck_assert_str_eq(smig_msg_type_name(m->type),
			 smig_msg_type_name(type));
	ck_assert_uint_eq(m->uid, OWNER);
	return m;
}

/* get_u64(m, "gen") ... - a field of m of that type, which must be there */
#define GET_FN(name, type, init)					\
	static type get_##name(const smig_msg_t *m, const char *key)	\
	{								\
		type v = init;						\
									\
		ck_assert_msg(smig_msg_get_##name(m, key, &v), "no %s", key); \
		return v;						\
	}
GET_FN(u64, uint64_t, 0)
GET_FN(u32, uint32_t, 0)
GET_FN(i32, int32_t, 0)
GET_FN(str, const char *, NULL)

/* check_ranks - the "au" field key of m is want ("4,5") */
static void check_ranks(const smig_msg_t *m, const char *key,
			const char *want)
{
	uint32_t *r = NULL;
	size_t n = 0;
	GString *s = g_string_new("");

	ck_assert_msg(smig_msg_get_u32_array(m, key, &r, &n), "no %s", key);
	for (size_t i = 0; i < n; i++)
		g_string_append_printf(s, "%s%u", i ? "," : "", r[i]);
	ck_assert_str_eq(s->str, want);
	g_free(r);
	g_string_free(s, true);
}

/* accept_engine - the engine's connection, and its HELLO_AGENT */
static smig_msg_t *accept_engine(void)
{
	struct pollfd p = { .fd = lfd, .events = POLLIN };
	smig_msg_t *m;

	ck_assert_int_eq(poll(&p, 1, WAIT_MS), 1);
	if (bal >= 0)
		close(bal);
	bal = accept(lfd, NULL, NULL);
	ck_assert_int_ge(bal, 0);
	m = expect(bal, SMIG_MSG_HELLO_AGENT);
	ck_assert_uint_eq(get_u32(m, "job"), JOB);
	ck_assert_uint_eq(get_u32(m, "step"), STEP);
	ck_assert_str_eq(get_str(m, "node"), "node7");
	check_ranks(m, "ranks", "4,5");
	return m;
}

/* start - a new engine, registered with the fake balancer */
static void start(void)
{
	smig_msg_t *m;

	host.engine = new_engine(lport, 0, 0);
	ck_assert_int_eq(smig_agent_fd(host.engine), -1);
	ck_assert_int_eq(smig_agent_tick(host.engine), -1);
	ck_assert_int_ge(smig_agent_fd(host.engine), 0);
	m = accept_engine();
	smig_msg_free(m);
}

/*
 * bal_send_to - a message of job/step with gen and, if key, one more field
 * to the engine, which reads it (uid: auth's)
 * IN val - floating reference, sunk here
 */
static void bal_send_to(smig_auth_t *auth, uint32_t job, uint32_t step,
			smig_msg_type_t type, uint64_t gen, const char *key,
			GVariant *val)
{
	GVariantBuilder b;
	GError *err = NULL;
	smig_msg_t *m;

	g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(&b, "{sv}", "job", g_variant_new_uint32(job));
	g_variant_builder_add(&b, "{sv}", "step", g_variant_new_uint32(step));
	g_variant_builder_add(&b, "{sv}", "gen", g_variant_new_uint64(gen));
	if (key)
		g_variant_builder_add(&b, "{sv}", key, val);
	m = smig_msg_new(type, g_variant_builder_end(&b));
	ck_assert_msg(smig_wire_send(bal, auth, m, &err), "%s",
		      err ? err->message : "");
	smig_msg_free(m);
	smig_agent_read(host.engine);
}

static void bal_send(smig_msg_type_t type, uint64_t gen, const char *key,
		     GVariant *val)
{
	bal_send_to(bal_auth, JOB, STEP, type, gen, key, val);
}

#define prepare(gen, ms) \
	bal_send(SMIG_MSG_PREPARE, gen, "timeout_ms", g_variant_new_uint32(ms))
#define capture(gen, target) \
	bal_send(SMIG_MSG_CAPTURE, gen, "target", g_variant_new_uint64(target))
#define commit(gen, stop) \
	bal_send(SMIG_MSG_COMMIT, gen, "stop", g_variant_new_boolean(stop))
#define abort_gen(gen, why) \
	bal_send(SMIG_MSG_ABORT, gen, "reason", g_variant_new_string(why))

/* handoff_req - HANDOFF of gen: rank's image to node9 at 10.0.0.9:port */
static void handoff_req(uint64_t gen, uint32_t rank, uint32_t port)
{
	smig_msg_t *m = smig_msg_new(SMIG_MSG_HANDOFF, g_variant_new_parsed(
		"{'job': <%u>, 'step': <%u>, 'gen': <%t>, 'rank': <%u>, "
		"'to_node': <'node9'>, 'addr': <'10.0.0.9'>, 'port': <%u>}",
		JOB, STEP, gen, rank, port));

	ck_assert(smig_wire_send(bal, bal_auth, m, NULL));
	smig_msg_free(m);
	smig_agent_read(host.engine);
}

static void expect_restored(uint64_t gen, const char *ranks)
{
	smig_msg_t *m = expect(bal, SMIG_MSG_RESTORED);

	ck_assert_uint_eq(get_u64(m, "gen"), gen);
	check_ranks(m, "ranks", ranks);
	smig_msg_free(m);
}

static void expect_count(uint64_t gen, uint32_t rank, uint64_t pause_at)
{
	smig_msg_t *m = expect(bal, SMIG_MSG_COUNT);

	ck_assert_uint_eq(get_u32(m, "job"), JOB);
	ck_assert_uint_eq(get_u32(m, "step"), STEP);
	ck_assert_uint_eq(get_u64(m, "gen"), gen);
	ck_assert_uint_eq(get_u32(m, "rank"), rank);
	ck_assert_uint_eq(get_u64(m, "pause_at"), pause_at);
	smig_msg_free(m);
}

static void expect_done(uint64_t gen, uint32_t rank, int32_t status,
			uint64_t bytes, const char *msg)
{
	smig_msg_t *m = expect(bal, SMIG_MSG_DONE);

	ck_assert_uint_eq(get_u64(m, "gen"), gen);
	ck_assert_uint_eq(get_u32(m, "rank"), rank);
	ck_assert_int_eq(get_i32(m, "status"), status);
	ck_assert_uint_eq(get_u64(m, "bytes"), bytes);
	ck_assert_str_eq(get_str(m, "msg"), msg);
	smig_msg_free(m);
}

START_TEST(test_register)
{
	smig_msg_t *m;

	/* Nothing is due before the first tick: no connection yet. */
	host.engine = new_engine(lport, 4711, 0);
	ck_assert(!pending(lfd));
	ck_assert_int_eq(smig_agent_tick(host.engine), -1);
	m = accept_engine();
	ck_assert_uint_eq(get_u32(m, "handoff_port"), 4711);
	ck_assert(!get_u64(m, "good_gen") && !get_u64(m, "tried_gen"));
	smig_msg_free(m);
	/* Registered once: no second HELLO, no RESTORED (none restored). */
	ck_assert_int_eq(smig_agent_tick(host.engine), -1);
	ck_assert(!pending(bal) && !pending(lfd));
	check_log(&host, "");
}
END_TEST

START_TEST(test_capture_round)
{
	start();
	host.verify_rc = -1006;
	prepare(1, 3000);
	check_log(&host, "prepare 1 3000;");
	ck_assert_uint_eq(smig_agent_capture_gen(host.engine), 1);
	smig_agent_count(host.engine, 4, 1, 17);
	smig_agent_count(host.engine, 5, 1, 18);
	expect_count(1, 4, 17);
	expect_count(1, 5, 18);
	capture(1, 18);
	check_log(&host, "capture 1 18;");
	/* The engine has the host verify each image reported good. */
	smig_agent_done(host.engine, 4, 1, 0, 7, NULL);
	expect_done(1, 4, 0, 100, "");
	smig_agent_done(host.engine, 5, 1, 0, 7, "");
	expect_done(1, 5, -1006, 7, "rank5.g1.img: bad");
	check_log(&host, "verify 4 1;verify 5 1;");
	/* A rank's own failure is forwarded as it is, unverified. */
	smig_agent_done(host.engine, 5, 1, -5, 0, "disk full");
	expect_done(1, 5, -5, 0, "disk full");
	check_log(&host, "");
	commit(1, false);
	check_log(&host, "good 1;commit 1 0;");
	ck_assert_uint_eq(smig_agent_capture_gen(host.engine), 0);
	ck_assert_uint_eq(smig_agent_good_gen(host.engine), 1);
	/* Late answers of a finished capture go nowhere. */
	smig_agent_count(host.engine, 4, 1, 17);
	smig_agent_done(host.engine, 4, 1, 0, 7, NULL);
	ck_assert(!pending(bal));
	check_log(&host, "");
}
END_TEST

/*
 * PREPARE's reason and stop (for smig_capture_info(3)) are what the host
 * gets from smig_agent_prepared() for its prepare event; a PREPARE of an
 * older balancer has neither
 */
START_TEST(test_prepare_reason)
{
	bool stop = false;
	smig_msg_t *m;

	start();
	m = smig_msg_new(SMIG_MSG_PREPARE, g_variant_new_parsed(
		"{'job': <%u>, 'step': <%u>, 'gen': <%t>, 'timeout_ms': <%u>, "
		"'reason': <'drain'>, 'stop': <true>}",
		JOB, STEP, (guint64) 1, 3000));
	ck_assert(smig_wire_send(bal, bal_auth, m, NULL));
	smig_msg_free(m);
	smig_agent_read(host.engine);
	check_log(&host, "prepare 1 3000;");
	ck_assert_str_eq(smig_agent_prepared(host.engine, &stop), "drain");
	ck_assert(stop);
	abort_gen(1, "capture-timeout");
	check_log(&host, "abort 1 0;");
	prepare(2, 3000);
	check_log(&host, "prepare 2 3000;");
	ck_assert_ptr_null(smig_agent_prepared(host.engine, &stop));
	ck_assert(!stop);
}
END_TEST

START_TEST(test_abort)
{
	smig_msg_t *m;

	start();
	prepare(2, 3000);
	smig_agent_count(host.engine, 4, 2, 3);
	expect_count(2, 4, 3);
	abort_gen(2, "capture-timeout");
	check_log(&host, "prepare 2 3000;abort 2 0;");
	ck_assert_uint_eq(smig_agent_capture_gen(host.engine), 0);
	/* After the abort: no COUNT, and a CAPTURE of it is refused. */
	smig_agent_count(host.engine, 5, 2, 3);
	capture(2, 3);
	check_log(&host, "");
	ck_assert(!pending(bal));
	/* The next capture runs; an ABORT of another one is refused. */
	prepare(3, 1000);
	abort_gen(2, "old");
	check_log(&host, "prepare 3 1000;");
	ck_assert_uint_eq(smig_agent_capture_gen(host.engine), 3);
	smig_agent_count(host.engine, 5, 3, 1);
	m = expect(bal, SMIG_MSG_COUNT);
	ck_assert_uint_eq(get_u64(m, "gen"), 3);
	smig_msg_free(m);
}
END_TEST

START_TEST(test_restored_once)
{
	start();
	smig_agent_restored(host.engine, 4, 0);
	expect_restored(0, "4");
	/* The same rank again (a second event): nothing new to say. */
	smig_agent_restored(host.engine, 4, 0);
	/* Not a rank of this node: ignored. */
	smig_agent_restored(host.engine, 9, 0);
	ck_assert(!pending(bal));
	/* Each message names every rank restored so far. */
	smig_agent_restored(host.engine, 5, 3);
	expect_restored(3, "4,5");
	ck_assert(!pending(bal));
}
END_TEST

/*
 * The balancer goes away in the middle of a capture: the ranks are told to
 * resume (ABORT), the engine registers again after the first backoff
 * (250 ms of its clock), saying what it saw (good_gen, tried_gen), and
 * repeats RESTORED.
 */
START_TEST(test_reregister)
{
	smig_msg_t *m;

	start();
	smig_agent_restored(host.engine, 4, 0);
	smig_agent_restored(host.engine, 5, 0);
	expect_restored(0, "4");
	expect_restored(0, "4,5");
	g_atomic_int_set(&host.answer, 1);
	prepare(1, 3000);
	capture(1, 15);
	commit(1, false);
	prepare(2, 3000);
	g_free(take_log(&host));
	while (pending(bal))	/* the answers of gen 1 and 2 */
		smig_msg_free(smig_wire_recv(bal, bal_auth, WAIT_MS, NULL));

	close(bal);
	bal = -1;
	smig_agent_read(host.engine);
	ck_assert_int_eq(smig_agent_fd(host.engine), -1);
	check_log(&host, "abort 2 0;");
	ck_assert_uint_eq(smig_agent_capture_gen(host.engine), 0);
	/* Not before the backoff. */
	ck_assert_int_eq(smig_agent_tick(host.engine), 250);
	host.now += 249 * 1000;
	ck_assert_int_eq(smig_agent_tick(host.engine), 1);
	ck_assert(!pending(lfd));
	host.now += 1000;
	ck_assert_int_eq(smig_agent_tick(host.engine), -1);
	m = accept_engine();
	ck_assert_uint_eq(get_u64(m, "good_gen"), 1);
	ck_assert_uint_eq(get_u64(m, "tried_gen"), 2);
	smig_msg_free(m);
	expect_restored(0, "4,5");
	ck_assert(!pending(bal));
	/* The old capture is over; a new one runs on the new connection. */
	prepare(3, 3000);
	expect_count(3, 4, 14);
	expect_count(3, 5, 15);
}
END_TEST

/* Nobody listens: tries after 250, 500, 1000 ... up to 5000 ms. */
START_TEST(test_backoff)
{
	const int want[] = { 250, 500, 1000, 2000, 4000, 5000, 5000 };
	uint16_t port = lport;
	int old = lfd;

	lfd = listen_loopback(&lport);	/* another port first: port closes */
	close(old);
	host.engine = new_engine(port, 0, 0);
	for (unsigned i = 0; i < G_N_ELEMENTS(want); i++) {
		ck_assert_int_eq(smig_agent_tick(host.engine), want[i]);
		ck_assert_int_eq(smig_agent_fd(host.engine), -1);
		host.now += (int64_t) want[i] * 1000;
	}
	/* Ten minutes after the loss it gives up: nothing is due any more. */
	host.now += 600 * G_USEC_PER_SEC;
	ck_assert_int_eq(smig_agent_tick(host.engine), -1);
	ck_assert_int_eq(smig_agent_tick(host.engine), -1);
	check_log(&host, "");
}
END_TEST

START_TEST(test_bad_messages)
{
	char garbage[64];

	memset(garbage, 'x', sizeof(garbage));
	start();
	/* Not from the balancer's uid: dropped. */
	bal_send_to(user_auth, JOB, STEP, SMIG_MSG_PREPARE, 1, "timeout_ms",
		    g_variant_new_uint32(1));
	/* Another job, another step, gen 0, no timeout_ms or of a bad type */
	bal_send_to(bal_auth, JOB + 1, STEP, SMIG_MSG_PREPARE, 1,
		    "timeout_ms", g_variant_new_uint32(1));
	bal_send_to(bal_auth, JOB, STEP + 1, SMIG_MSG_PREPARE, 1,
		    "timeout_ms", g_variant_new_uint32(1));
	prepare(0, 1000);
	bal_send(SMIG_MSG_PREPARE, 1, NULL, NULL);
	bal_send(SMIG_MSG_PREPARE, 1, "timeout_ms",
		 g_variant_new_string("1000"));
	/* A message an agent never gets from the balancer. */
	bal_send(SMIG_MSG_COUNT, 1, NULL, NULL);
	/* CAPTURE, COMMIT, HANDOFF without a capture in progress. */
	capture(1, 5);
	commit(1, true);
	handoff_req(1, 4, 6000);
	ck_assert_uint_eq(smig_agent_good_gen(host.engine), 0);
	ck_assert_uint_eq(smig_agent_capture_gen(host.engine), 0);
	check_log(&host, "");
	ck_assert(!pending(bal));
	/* During a capture: CAPTURE without target, COMMIT without stop. */
	prepare(1, 1000);
	check_log(&host, "prepare 1 1000;");
	bal_send(SMIG_MSG_CAPTURE, 1, NULL, NULL);
	bal_send(SMIG_MSG_COMMIT, 1, NULL, NULL);
	check_log(&host, "");
	ck_assert_uint_eq(smig_agent_capture_gen(host.engine), 1);
	ck_assert(!pending(bal));
	/* Still connected and working. */
	capture(1, 5);
	check_log(&host, "capture 1 5;");
	/*
	 * Bytes that are no frame: the connection is dropped, the capture
	 * aborted, and the engine registers again.
	 */
	ck_assert_int_eq(write(bal, garbage, sizeof(garbage)), sizeof(garbage));
	smig_agent_read(host.engine);
	ck_assert_int_eq(smig_agent_fd(host.engine), -1);
	check_log(&host, "abort 1 0;");
	host.now += 250 * 1000;
	smig_agent_tick(host.engine);
	smig_msg_free(accept_engine());
}
END_TEST

START_TEST(test_handoff)
{
	smig_msg_t *m;

	start();
	prepare(1, 1000);
	g_free(take_log(&host));
	handoff_req(1, 5, 6000);
	check_log(&host, "handoff 5 1 node9 10.0.0.9:6000;");
	m = expect(bal, SMIG_MSG_HANDOFF);
	ck_assert_uint_eq(get_u64(m, "gen"), 1);
	ck_assert_uint_eq(get_u32(m, "rank"), 5);
	ck_assert_int_eq(get_i32(m, "status"), 0);
	ck_assert_str_eq(get_str(m, "msg"), "");
	smig_msg_free(m);

	/* The host's failure goes back to the balancer. */
	host.handoff_rc = -ECONNREFUSED;
	handoff_req(1, 4, 6000);
	check_log(&host, "handoff 4 1 node9 10.0.0.9:6000;");
	m = expect(bal, SMIG_MSG_HANDOFF);
	ck_assert_int_eq(get_i32(m, "status"), -ECONNREFUSED);
	ck_assert_str_eq(get_str(m, "msg"), "node node9: refused");
	smig_msg_free(m);

	/* Not a rank of this node, or port 0 or > 65535: refused. */
	handoff_req(1, 2, 6000);
	handoff_req(1, 4, 0);
	handoff_req(1, 4, 65536);
	check_log(&host, "");
	ck_assert(!pending(bal));
}
END_TEST

/* commit_partner - COMMIT of gen naming node (addr:port) as the partner */
static void commit_partner(uint64_t gen, bool stop, const char *node,
			   uint32_t port)
{
	smig_msg_t *m = smig_msg_new(SMIG_MSG_COMMIT, g_variant_new_parsed(
		"{'job': <%u>, 'step': <%u>, 'gen': <%t>, 'stop': <%b>, "
		"'partner': <%s>, 'partner_addr': <'10.0.0.9'>, "
		"'partner_port': <%u>}", JOB, STEP, gen, stop, node, port));

	ck_assert(smig_wire_send(bal, bal_auth, m, NULL));
	smig_msg_free(m);
	smig_agent_read(host.engine);
}

/*
 * MigratePartnerCopies: a COMMIT the ranks go on from that names a partner
 * has the host copy the generation there, after recording it as good; a
 * COMMIT that stops the ranks, names this node, or a port out of range
 * does not
 */
START_TEST(test_partner_commit)
{
	start();
	prepare(1, 1000);
	g_free(take_log(&host));
	commit_partner(1, false, "node9", 6000);
	check_log(&host, "good 1;partner 1 node9 10.0.0.9:6000;commit 1 0;");
	prepare(2, 1000);
	g_free(take_log(&host));
	commit_partner(2, false, "node7", 6000);
	check_log(&host, "good 2;commit 2 0;");
	prepare(3, 1000);
	g_free(take_log(&host));
	commit_partner(3, false, "node9", 0);
	check_log(&host, "good 3;commit 3 0;");
	prepare(4, 1000);
	g_free(take_log(&host));
	commit_partner(4, false, "node9", 65536);
	check_log(&host, "good 4;commit 4 0;");
	prepare(5, 1000);
	g_free(take_log(&host));
	commit_partner(5, true, "node9", 6000);
	check_log(&host, "good 5;commit 5 1;");
	ck_assert(!pending(bal));
}
END_TEST

START_TEST(test_samples)
{
	smig_msg_t *m;
	uint32_t n;

	host.engine = new_engine(lport, 0, 1000);
	/* Connects now; the first SAMPLE is one interval later. */
	ck_assert_int_eq(smig_agent_tick(host.engine), 1000);
	smig_msg_free(accept_engine());
	host.now += 999 * 1000;
	ck_assert_int_eq(smig_agent_tick(host.engine), 1);
	ck_assert(!pending(bal));
	host.now += 1000;
	ck_assert_int_eq(smig_agent_tick(host.engine), 1000);
	m = expect(bal, SMIG_MSG_SAMPLE);
	ck_assert(smig_msg_get_u32(m, "n", &n));
	ck_assert_uint_eq(n, 1);
	smig_msg_free(m);
	ck_assert(!pending(bal));
	/* A host that slept 10 intervals: one SAMPLE, not ten. */
	host.now += 10 * G_USEC_PER_SEC;
	ck_assert_int_eq(smig_agent_tick(host.engine), 1000);
	m = expect(bal, SMIG_MSG_SAMPLE);
	ck_assert(smig_msg_get_u32(m, "n", &n));
	ck_assert_uint_eq(n, 2);
	smig_msg_free(m);
	ck_assert(!pending(bal));
	/* BYE ends it: no SAMPLE, no reconnect. */
	smig_agent_bye(host.engine);
	m = expect(bal, SMIG_MSG_BYE);
	ck_assert_int_eq(get_i32(m, "status"), 0);
	smig_msg_free(m);
	ck_assert_int_eq(smig_agent_fd(host.engine), -1);
	host.now += 10 * G_USEC_PER_SEC;
	smig_agent_tick(host.engine);
	ck_assert_int_eq(smig_agent_fd(host.engine), -1);
	ck_assert(!pending(lfd));
}
END_TEST

/* ----------------------------------- tcase "balancer": a real balancer */

static const uint32_t ranks1[2] = { 0, 1 }, ranks2[2] = { 2, 3 };
static host_t h1, h2;		/* node1, node2 */
static gint node2_drained;	/* atomic */
static host_t pub;		/* the job's published lines */
static smig_conf_t *conf;
static smig_balancer_t *balancer;
static GThread *driver;
static gint driving;

/* Allocation node[1-3]; node2 drains when the test says so. */
static bool bal_node_flags(void *ctx, const char *node, uint32_t *flags)
{
	unsigned i;

	if (sscanf(node, "node%u", &i) != 1 || i < 1 || i > 3)
		return false;
	*flags = i == 2 && g_atomic_int_get(&node2_drained) ?
		 SMIG_NODE_DRAIN : 0;
	return true;
}

static bool bal_job_owner(void *ctx, uint32_t job_id, uint32_t *uid)
{
	*uid = OWNER;
	return job_id == JOB;
}

static void bal_job_publish(void *ctx, uint32_t job_id, const char *text)
{
	host_logf(&pub, "%s", text);
}

static void balancer_start(uint16_t port)
{
	smig_host_ops_t hops = {
		.node_flags = bal_node_flags,
		.job_owner = bal_job_owner,
		.job_publish = bal_job_publish,
	};
	GError *err = NULL;

	conf->port = port;
	balancer = smig_balancer_new(conf, &hops, bal_auth, ADMIN);
	ck_assert_msg(smig_balancer_start(balancer, &err), "%s",
		      err ? err->message : "");
	ck_assert_uint_ne(smig_balancer_port(balancer), 0);
}

/* drive - the agent thread of both nodes */
static gpointer drive(gpointer unused)
{
	host_t *hs[2] = { &h1, &h2 };

	while (g_atomic_int_get(&driving)) {
		struct pollfd p[2];

		for (int i = 0; i < 2; i++) {
			smig_agent_tick(hs[i]->engine);
			p[i].fd = smig_agent_fd(hs[i]->engine);
			p[i].events = POLLIN;
		}
		if (poll(p, 2, 20) <= 0)
			continue;
		for (int i = 0; i < 2; i++)
			if (p[i].fd >= 0 && p[i].revents)
				smig_agent_read(hs[i]->engine);
	}
	return NULL;
}

static void node_start(host_t *h, const char *node, const uint32_t *ranks)
{
	host_init(h, ranks, 2);
	h->real_clock = true;
	h->engine = engine_new(h, node, 0, smig_balancer_port(balancer), 0, 0);
	/* Both ranks are past smig_register() (a fresh start). */
	smig_agent_restored(h->engine, ranks[0], 0);
	smig_agent_restored(h->engine, ranks[1], 0);
}

static void setup_real(void)
{
	conf = smig_conf_new();
	g_free(conf->balancer_addr);
	conf->balancer_addr = g_strdup("127.0.0.1");
	conf->poll_interval_ms = 20;
	conf->capture_timeout_ms = 1000;
	conf->retry_interval_ms = 60000;
	g_atomic_int_set(&node2_drained, 0);
	host_init(&pub, NULL, 0);
	balancer_start(0);
	node_start(&h1, "node1", ranks1);
	node_start(&h2, "node2", ranks2);
	g_atomic_int_set(&driving, 1);
	driver = g_thread_new("drive", drive, NULL);
}

static void teardown_real(void)
{
	g_atomic_int_set(&driving, 0);
	g_thread_join(driver);
	host_fini(&h1);
	host_fini(&h2);
	smig_balancer_free(balancer);
	smig_conf_free(conf);
	host_fini(&pub);
}

/* srun_send - a message of srun (job 42 step 0) to the balancer */
static void srun_send(int fd, smig_msg_type_t type, GVariant *body)
{
	smig_msg_t *m = smig_msg_new(type, body);

	ck_assert(smig_wire_send(fd, user_auth, m, NULL));
	smig_msg_free(m);
}

/* srun_hello - the step's srun registers (auto mode, 4 tasks) */
static int srun_hello(void)
{
	GError *err = NULL;
	int fd = smig_wire_connect("127.0.0.1", smig_balancer_port(balancer),
				   WAIT_MS, &err);

	ck_assert_msg(fd >= 0, "%s", err ? err->message : "");
	srun_send(fd, SMIG_MSG_HELLO_SRUN, g_variant_new_parsed(
		"{'job': <%u>, 'step': <uint32 0>, 'request': <'mode=auto'>, "
		"'ntasks': <uint32 4>, 'alloc_nodes': <'node[1-3]'>, "
		"'alloc_cpus': <'2(x3)'>, 'cpus_per_task': <uint32 1>, "
		"'restored_gen': <uint64 0>, 'prev_step': <uint32 0>}", JOB));
	return fd;
}

/*
 * srun_relaunch - srun gets RELAUNCH of gen moving node2's ranks to
 * node3 and acknowledges it
 */
static void srun_relaunch(int fd, uint64_t gen)
{
	GError *err = NULL;
	smig_msg_t *m = smig_wire_recv(fd, user_auth, WAIT_MS, &err);

	ck_assert_msg(m, "waiting for RELAUNCH: %s", err ? err->message : "");
	ck_assert_str_eq(smig_msg_type_name(m->type), "RELAUNCH");
	ck_assert_uint_eq(get_u64(m, "gen"), gen);
	ck_assert_str_eq(get_str(m, "hostfile"),
			 "node1\nnode1\nnode3\nnode3\n");
	smig_msg_free(m);
	srun_send(fd, SMIG_MSG_RELAUNCH_ACK, g_variant_new_parsed(
		"{'job': <%u>, 'step': <uint32 0>, 'gen': <%t>}", JOB, gen));
}

/*
 * Node2 drains: the balancer captures both nodes through the engines (the
 * fake ranks answer in notify), has srun relaunch, and COMMITs; each
 * engine had its host verify every image and record gen 1 as good.
 */
START_TEST(test_real_capture_round)
{
	int srun;

	g_atomic_int_set(&h1.answer, 1);
	g_atomic_int_set(&h2.answer, 1);
	srun = srun_hello();
	g_atomic_int_set(&node2_drained, 1);
	srun_relaunch(srun, 1);
	ck_assert(wait_log(&h1, "commit 1 1;"));
	ck_assert(wait_log(&h2, "commit 1 1;"));
	check_log(&h1, "prepare 1 1000;capture 1 13;verify 0 1;verify 1 1;good 1;commit 1 1;");
	check_log(&h2, "prepare 1 1000;capture 1 13;verify 2 1;verify 3 1;good 1;commit 1 1;");
	/* The job's line says what was moved. */
	ck_assert(wait_log(&pub, "mode=auto gen=1 moves=1 last_move=ranks=2,3;from=node2;to=node3;reason=drain;"));
	close(srun);
}
END_TEST

/*
 * The balancer restarts in the middle of a capture (its ranks do not
 * answer): each engine aborts it, registers with the new balancer by
 * itself and says again that its ranks are restored; the new balancer
 * then runs the move to its end with them.
 */
START_TEST(test_real_restart)
{
	uint16_t port = smig_balancer_port(balancer);
	char *log;
	int srun;

	srun = srun_hello();
	g_atomic_int_set(&node2_drained, 1);
	ck_assert(wait_log(&h1, "prepare 1 1000;"));
	ck_assert(wait_log(&h2, "prepare 1 1000;"));
	check_log(&h1, "prepare 1 1000;");
	check_log(&h2, "prepare 1 1000;");

	smig_balancer_free(balancer);
	close(srun);
	ck_assert(wait_log(&h1, "abort 1 0;"));
	ck_assert(wait_log(&h2, "abort 1 0;"));
	check_log(&h1, "abort 1 0;");
	check_log(&h2, "abort 1 0;");
	g_atomic_int_set(&h1.answer, 1);
	g_atomic_int_set(&h2.answer, 1);
	balancer_start(port);
	srun = srun_hello();
	srun_relaunch(srun, 2);
	ck_assert(wait_log(&h1, "commit "));
	log = take_log(&h1);
	/* The new balancer went on from the generation the agents tried. */
	ck_assert_str_eq(log, "prepare 2 1000;capture 2 13;verify 0 2;verify 1 2;good 2;commit 2 1;");
	g_free(log);
	ck_assert(wait_log(&h2, "commit 2 1;"));
	/* The job's line says what was moved. */
	ck_assert(wait_log(&pub, "mode=auto gen=2 moves=1 last_move=ranks=2,3;from=node2;to=node3;reason=drain;"));
	close(srun);
}
END_TEST

static Suite *agent_suite(void)
{
	Suite *s = suite_create("agent");
	TCase *tc = tcase_create("engine");
	TCase *rb = tcase_create("balancer");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_register);
	tcase_add_test(tc, test_capture_round);
	tcase_add_test(tc, test_abort);
	tcase_add_test(tc, test_prepare_reason);
	tcase_add_test(tc, test_restored_once);
	tcase_add_test(tc, test_reregister);
	tcase_add_test(tc, test_backoff);
	tcase_add_test(tc, test_bad_messages);
	tcase_add_test(tc, test_handoff);
	tcase_add_test(tc, test_partner_commit);
	tcase_add_test(tc, test_samples);
	suite_add_tcase(s, tc);
	tcase_add_checked_fixture(rb, setup_real, teardown_real);
	tcase_set_timeout(rb, 30);
	tcase_add_test(rb, test_real_capture_round);
	tcase_add_test(rb, test_real_restart);
	suite_add_tcase(s, rb);
	return s;
}

int main(void)
{
	SRunner *sr;

	/* The "none" credentials: the uid each side claims. */
	agent_auth = smig_auth_none_new(OWNER, OWNER);
	user_auth = smig_auth_none_new(OWNER, OWNER);
	bal_auth = smig_auth_none_new(ADMIN, ADMIN);
	if (getenv("AGENT_TEST_DEBUG"))
		smig_log_set_sink(NULL, SMIG_LOG_DEBUG2);
	sr = srunner_create(agent_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	smig_auth_free(agent_auth);
	smig_auth_free(user_auth);
	smig_auth_free(bal_auth);
	return failed ? 1 : 0;
}
