/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_balancer.c - the balancer service: registrations, node polling and
 * the capture protocol of doc/design.md, on a thread of its own
 *
 * Everything below runs on the balancer's thread (its own GMainContext),
 * except smig_balancer_new/_start/_free, which run on the host's thread
 * while that thread is not running. State is therefore never locked.
 *
 * Connections are never closed in the middle of handling something else:
 * conn_kill() marks a connection dead and an idle source reaps it later, so
 * that loops over a step's agents never see one vanish under them.
 */
/* accept4() */
#define _GNU_SOURCE 1
#include "smig_config.h"

#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <glib.h>

#include "smig_balancer.h"
#include "smig_error.h"
#include "smig_hostlist.h"
#include "smig_log.h"
#include "smig_metrics.h"
#include "smig_policy.h"
#include "smig_request.h"
#include "smig_wire.h"

/* Bounds on what one peer can make the balancer keep. */
#define MAX_RANKS	65536		/* ranks of one step */
#define MAX_NODES	16384		/* nodes of one allocation */
#define MAX_STEPS	4096		/* steps tracked at once */
#define MAX_JOB_STEPS	256		/* of them, steps of one job */
#define MAX_CONNS	65536		/* open connections, at most; fewer
					 * if RLIMIT_NOFILE is lower */
#define SPARE_FDS	64		/* left to the host (slurmctld's own
					 * sockets, files, munge) */
#define MIN_CONNS	16		/* even under a tiny RLIMIT_NOFILE */
#define ACCEPT_PAUSE_MS	1000		/* no accept after EMFILE/ENFILE */
#define ACCEPT_BATCH	64		/* accepts per listener wake-up */
#define MAX_OUTQ	(8u << 20)	/* bytes queued to one slow peer */
#define MAX_IN_TOTAL	(64u << 20)	/* bytes of incomplete frames held,
					 * all connections together */
#define READ_CHUNK	65536
#define MAX_REASON	512		/* bytes of a refusal's reason */
#define IDLE_POLLS	15		/* a peer that sent no message in this
					 * many poll intervals is closed */

typedef struct smig_balancer smig_balancer_t;
typedef struct job job_t;
typedef struct step step_t;

typedef enum {
	ROLE_NONE,		/* not registered (yet) */
	ROLE_SRUN,
	ROLE_AGENT,
} conn_role_t;

/*
 * One epoll set, watched by one GSource: GLib's own unix-fd sources would
 * make every wake-up of the loop poll() every connection (ten thousand node
 * agents), while epoll_wait() returns only the ready ones.
 */
typedef struct fd_poller {
	GSource src;
	int epfd;
	bool dispatching;
	GSList *graveyard;	/* fd_source_t freed during a dispatch */
} fd_poller_t;

/* One fd in a poller, calling io(data, condition) when it is ready. */
typedef struct fd_source {
	fd_poller_t *p;
	int fd;
	void (*io)(void *data, GIOCondition cond);	/* NULL once freed */
	void *data;
} fd_source_t;

typedef struct conn {
	smig_balancer_t *b;
	int fd;
	fd_source_t *src;
	char *peer;		/* "addr:port", for messages */
	GByteArray *in;
	GQueue out;		/* of GBytes */
	size_t out_off;		/* bytes of the head already sent */
	size_t out_len;		/* bytes queued */
	bool dead;		/* reap soon; ignore its input */
	conn_role_t role;
	int64_t accepted;	/* monotonic us */
	bool spoke;		/* a message was received (authenticated) */
	bool bye;		/* BYE received */
	bool eof;		/* closed by the peer (end of stream, error) */
	step_t *step;		/* with ROLE_SRUN/ROLE_AGENT */
	struct agent *agent;	/* with ROLE_AGENT */
} conn_t;

typedef struct agent {
	conn_t *conn;		/* NULL once gone */
	char *node;
	uint32_t node_idx;	/* index into step->nodes once indexed */
	uint32_t *ranks;
	size_t nranks;
	uint16_t handoff_port;	/* MigrateImageStore=local: its receiver */
	char *addr;		/* its address as seen here, for hand-offs */
} agent_t;

typedef enum {
	PHASE_PREPARE,		/* PREPARE sent, collecting COUNTs */
	PHASE_CAPTURE,		/* CAPTURE sent, collecting DONEs */
	PHASE_HANDOFF,		/* node-local store: images being handed off */
	PHASE_RELAUNCH,		/* RELAUNCH sent, waiting for the ACK */
} phase_t;

typedef struct capture {
	uint64_t gen;
	uint64_t prev_good;	/* the job's last good one before gen */
	phase_t phase;
	int64_t deadline;	/* monotonic us */
	smig_plan_t *plan;
	uint64_t *pause_at;	/* per rank */
	guint8 *counted;	/* per rank */
	guint8 *done;		/* per rank */
	uint32_t ncounted;
	uint32_t ndone;
	uint32_t nhandoff;	/* hand-offs not confirmed yet */
	guint8 *handed;		/* per rank: hand-off confirmed */
	char *hostfile;
} capture_t;

struct job {
	uint32_t id;
	uint32_t uid;		/* owner */
	smig_mode_t mode;
	uint64_t last_good;	/* last good generation */
	uint64_t last_tried;	/* last generation started */
	uint32_t moves;
	char *last_move;
	char *last_error;
	char *advice;		/* advise mode: what a move would be */
	int64_t retry_after;	/* monotonic us; 0: none */
	char *published;	/* last line handed to the host */
	uint32_t nsteps;
	smig_metrics_t *metrics;	/* NULL until the first SAMPLE */
	uint32_t sample_ms;	/* interval of the last SAMPLE */
	bool samples_new;	/* SAMPLEs since the last publish: the
				 * poll timer publishes the load summary */
};

struct step {
	gint64 key;		/* job << 32 | step */
	uint32_t step_id;
	job_t *job;
	conn_t *srun;		/* NULL until HELLO_SRUN or once gone */
	bool registered;	/* HELLO_SRUN seen: fields below are set */
	smig_request_t req;
	uint32_t ntasks;
	char **nodes;		/* allocation, NULL-terminated */
	uint32_t nnodes;
	uint32_t *slots;	/* per node */
	GPtrArray *agents;	/* of agent_t, owned */
	agent_t **rank_agent;	/* per rank, borrowed from agents */
	capture_t *cap;
	bool committed;		/* ranks told to stop: step ending */
	int64_t next_periodic;	/* monotonic us of the next every= capture */
};

struct smig_balancer {
	const smig_conf_t *conf;
	smig_host_ops_t ops;
	smig_auth_t *auth;
	uint32_t admin_uid;
	uint16_t port;		/* bound port */

	GMainContext *ctx;
	GMainLoop *loop;
	GThread *thread;
	int listen_fd;		/* -1 until started */
	fd_poller_t *poller;	/* every fd of the balancer */
	fd_source_t *listen_src;
	GSource *accept_pause;	/* pending listener resume, or NULL */
	uint32_t max_conns;	/* from RLIMIT_NOFILE at start */
	uint32_t max_conns_set;	/* smig_balancer_set_max_conns(), or 0 */
	GSource *timer;
	GSource *reaper;	/* pending idle reap, or NULL */

	GHashTable *conns;	/* conn_t set, owned */
	GQueue dead;		/* conns to reap */
	size_t in_total;	/* sum of the conns' input buffers */
	GHashTable *jobs;	/* uint32 id -> job_t, owned */
	GHashTable *steps;	/* gint64 key -> step_t, owned */
};

static void conn_kill(conn_t *c, const char *why);
static void capture_relaunch(smig_balancer_t *b, step_t *s);
static void capture_handoff(smig_balancer_t *b, step_t *s);
static bool step_store_local(const step_t *s);
static void capture_abort(smig_balancer_t *b, step_t *s, const char *reason,
			  const char *ranks);

/* ---------------------------------------------------------------- fds */

#define POLL_BATCH	256		/* ready fds handled per wake-up */

static uint32_t cond_to_epoll(GIOCondition cond)
{
	return (cond & G_IO_IN ? EPOLLIN : 0) |
	       (cond & G_IO_OUT ? EPOLLOUT : 0);
}

static GIOCondition epoll_to_cond(uint32_t ev)
{
	return (ev & EPOLLIN ? G_IO_IN : 0) | (ev & EPOLLOUT ? G_IO_OUT : 0) |
	       (ev & EPOLLHUP ? G_IO_HUP : 0) | (ev & EPOLLERR ? G_IO_ERR : 0);
}

/* Level-triggered, like poll(): what is left of a batch comes next time. */
static gboolean fd_poller_dispatch(GSource *src, GSourceFunc cb,
				   gpointer data)
{
	fd_poller_t *p = (fd_poller_t *) src;
	struct epoll_event ev[POLL_BATCH];
	int n;

	n = epoll_wait(p->epfd, ev, POLL_BATCH, 0);
	if (n < 0 && errno != EINTR)
		smig_error("epoll_wait: %s", g_strerror(errno));
	p->dispatching = true;
	for (int i = 0; i < n; i++) {
		fd_source_t *fs = ev[i].data.ptr;

		/* Freed by an earlier callback of this batch: skip it. */
		if (fs->io)
			fs->io(fs->data, epoll_to_cond(ev[i].events));
	}
	p->dispatching = false;
	g_slist_free_full(p->graveyard, g_free);
	p->graveyard = NULL;
	return G_SOURCE_CONTINUE;
}

static void fd_poller_finalize(GSource *src)
{
	fd_poller_t *p = (fd_poller_t *) src;

	g_slist_free_full(p->graveyard, g_free);
	if (p->epfd >= 0)
		close(p->epfd);
}

static GSourceFuncs fd_poller_funcs = {
	.dispatch = fd_poller_dispatch,
	.finalize = fd_poller_finalize,
};

/* RET new poller attached to ctx, or NULL with error set */
static fd_poller_t *fd_poller_new(GMainContext *ctx, GError **error)
{
	fd_poller_t *p;
	int epfd = epoll_create1(EPOLL_CLOEXEC);

	if (epfd < 0) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_IO,
			    "epoll_create1: %s", g_strerror(errno));
		return NULL;
	}
	p = (fd_poller_t *) g_source_new(&fd_poller_funcs,
					 sizeof(fd_poller_t));
	p->epfd = epfd;
	g_source_add_unix_fd(&p->src, epfd, G_IO_IN);
	g_source_attach(&p->src, ctx);
	return p;
}

static void fd_poller_free(fd_poller_t *p)
{
	if (!p)
		return;
	g_source_destroy(&p->src);
	g_source_unref(&p->src);
}

/*
 * fd_source_new - watch fd for input in poller p
 * RET new source, or NULL if epoll refuses the fd (logged); caller frees
 *     with fd_source_free()
 */
static fd_source_t *fd_source_new(fd_poller_t *p, int fd,
				  void (*io)(void *, GIOCondition), void *data)
{
	fd_source_t *fs = g_new0(fd_source_t, 1);
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = fs };

	fs->p = p;
	fs->fd = fd;
	fs->io = io;
	fs->data = data;
	if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		smig_error("epoll_ctl(ADD, fd %d): %s", fd, g_strerror(errno));
		g_free(fs);
		return NULL;
	}
	return fs;
}

/* fd_source_set - the conditions to watch (0: none for now) */
static void fd_source_set(fd_source_t *fs, GIOCondition cond)
{
	struct epoll_event ev = { .events = cond_to_epoll(cond),
				  .data.ptr = fs };

	if (epoll_ctl(fs->p->epfd, EPOLL_CTL_MOD, fs->fd, &ev) < 0)
		smig_error("epoll_ctl(MOD, fd %d): %s", fs->fd,
			   g_strerror(errno));
}

/* fd_source_free - stop watching (before the fd is closed); NULL: no-op */
static void fd_source_free(fd_source_t *fs)
{
	if (!fs)
		return;
	epoll_ctl(fs->p->epfd, EPOLL_CTL_DEL, fs->fd, NULL);
	fs->io = NULL;
	if (fs->p->dispatching)
		fs->p->graveyard = g_slist_prepend(fs->p->graveyard, fs);
	else
		g_free(fs);
}

/* ---------------------------------------------------------------- jobs */

static int64_t now_us(void)
{
	return g_get_monotonic_time();
}

static void job_free(job_t *j)
{
	g_free(j->last_move);
	g_free(j->last_error);
	g_free(j->advice);
	g_free(j->published);
	smig_metrics_free(j->metrics);
	g_free(j);
}

/* The job's state line, doc/design.md format. RET caller g_free()s */
static char *job_line(const job_t *j)
{
	GString *s = g_string_new(NULL);

	g_string_printf(s, "mode=%s gen=%" PRIu64 " moves=%u",
			smig_mode_name(j->mode), j->last_good, j->moves);
	if (j->last_move)
		g_string_append_printf(s, " last_move=%s", j->last_move);
	if (j->advice)
		g_string_append_printf(s, " advice=%s", j->advice);
	if (j->last_error)
		g_string_append_printf(s, " last_error=%s", j->last_error);
	if (j->metrics) {
		char *load = smig_metrics_summary(j->metrics);

		if (load)
			g_string_append_printf(s, " load=%s", load);
		g_free(load);
	}
	return g_string_free(s, FALSE);
}

/* Hand the state line to the host if it changed since the last time. */
static void job_publish(smig_balancer_t *b, job_t *j)
{
	char *line = job_line(j);

	if (!g_strcmp0(line, j->published)) {
		g_free(line);
		return;
	}
	smig_debug("JobId=%u state: %s", j->id, line);
	if (b->ops.job_publish)
		b->ops.job_publish(b->ops.ctx, j->id, line);
	g_free(j->published);
	j->published = line;
}

static void job_set_error(job_t *j, uint64_t gen, const char *reason,
			  const char *ranks)
{
	g_free(j->last_error);
	if (ranks && ranks[0])
		j->last_error = g_strdup_printf("gen=%" PRIu64
						";reason=%s;ranks=%s",
						gen, reason, ranks);
	else
		j->last_error = g_strdup_printf("gen=%" PRIu64 ";reason=%s",
						gen, reason);
}

/* ---------------------------------------------------------------- steps */

static void agent_free(agent_t *a)
{
	g_free(a->addr);
	g_free(a->node);
	g_free(a->ranks);
	g_free(a);
}

static void capture_free(capture_t *cap)
{
	if (!cap)
		return;
	smig_plan_free(cap->plan);
	g_free(cap->pause_at);
	g_free(cap->counted);
	g_free(cap->done);
	g_free(cap->handed);
	g_free(cap->hostfile);
	g_free(cap);
}

static void step_free(step_t *s)
{
	capture_free(s->cap);
	g_strfreev(s->nodes);
	g_free(s->slots);
	g_free(s->rank_agent);
	g_ptr_array_free(s->agents, TRUE);
	g_free(s);
}

static gint64 step_key(uint32_t job_id, uint32_t step_id)
{
	return (gint64) (((uint64_t) job_id << 32) | step_id);
}

static step_t *step_find(smig_balancer_t *b, uint32_t job_id,
			 uint32_t step_id)
{
	gint64 key = step_key(job_id, step_id);

	return g_hash_table_lookup(b->steps, &key);
}

/* Detach every connection from a step and forget it. */
static void step_remove(smig_balancer_t *b, step_t *s)
{
	if (s->srun) {
		s->srun->role = ROLE_NONE;
		s->srun->step = NULL;
	}
	for (guint i = 0; i < s->agents->len; i++) {
		agent_t *a = g_ptr_array_index(s->agents, i);

		if (a->conn) {
			a->conn->role = ROLE_NONE;
			a->conn->step = NULL;
			a->conn->agent = NULL;
		}
	}
	smig_debug("JobId=%u StepId=%u forgotten", s->job->id, s->step_id);
	s->job->nsteps--;
	g_hash_table_remove(b->steps, &s->key);
}

/* Forget a step once neither its srun nor any agent is connected. */
static void step_maybe_remove(smig_balancer_t *b, step_t *s)
{
	if (s->srun || s->agents->len)
		return;
	step_remove(b, s);
}

/*
 * Place an agent's ranks in the step's rank map.
 * RET false with *why set (caller g_free()s) if the node is not in the
 * allocation or a rank is out of range or claimed already.
 */
static bool step_index_agent(step_t *s, agent_t *a, char **why)
{
	uint32_t n;

	for (n = 0; n < s->nnodes; n++)
		if (!strcmp(s->nodes[n], a->node))
			break;
	if (n == s->nnodes) {
		*why = g_strdup_printf("node=%s: not in the allocation",
				       a->node);
		return false;
	}
	for (size_t i = 0; i < a->nranks; i++) {
		uint32_t r = a->ranks[i];

		if (r >= s->ntasks) {
			*why = g_strdup_printf("rank=%u: out of range (ntasks=%u)",
					       r, s->ntasks);
			goto undo;
		}
		if (s->rank_agent[r]) {
			*why = g_strdup_printf("rank=%u: already reported by node %s",
					       r, s->rank_agent[r]->node);
			goto undo;
		}
		s->rank_agent[r] = a;
		continue;
undo:
		for (size_t k = 0; k < i; k++)
			if (s->rank_agent[a->ranks[k]] == a)
				s->rank_agent[a->ranks[k]] = NULL;
		return false;
	}
	a->node_idx = n;
	return true;
}

static void step_unindex_agent(step_t *s, agent_t *a)
{
	if (!s->registered)
		return;
	for (size_t i = 0; i < a->nranks; i++)
		if (a->ranks[i] < s->ntasks &&
		    s->rank_agent[a->ranks[i]] == a)
			s->rank_agent[a->ranks[i]] = NULL;
}

static bool step_map_complete(const step_t *s)
{
	if (!s->registered)
		return false;
	for (uint32_t r = 0; r < s->ntasks; r++)
		if (!s->rank_agent[r])
			return false;
	return true;
}

/* Ranks as "2,3", caller g_free()s */
static char *ranks_text(const uint32_t *ranks, size_t n)
{
	GString *s = g_string_new(NULL);

	for (size_t i = 0; i < n; i++)
		g_string_append_printf(s, "%s%u", i ? "," : "", ranks[i]);
	return g_string_free(s, FALSE);
}

/* ---------------------------------------------------------------- output */

static void conn_update_events(conn_t *c)
{
	GIOCondition cond = G_IO_IN;

	if (c->out_len)
		cond |= G_IO_OUT;
	fd_source_set(c->src, cond);
}

/* Write what the socket takes now. RET false if the peer is gone. */
static bool conn_flush(conn_t *c)
{
	int fd = c->fd;

	while (!g_queue_is_empty(&c->out)) {
		GBytes *head = g_queue_peek_head(&c->out);
		gsize len;
		const uint8_t *data = g_bytes_get_data(head, &len);
		ssize_t n;

		n = send(fd, data + c->out_off, len - c->out_off,
			 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			int e = errno;

			if (e == EINTR)
				continue;
			if (e == EAGAIN || e == EWOULDBLOCK)
				break;
			smig_verbose("connection %s: send: %s", c->peer,
				     g_strerror(e));
			return false;
		}
		c->out_off += n;
		c->out_len -= n;
		if (c->out_off == len) {
			g_bytes_unref(g_queue_pop_head(&c->out));
			c->out_off = 0;
		}
	}
	conn_update_events(c);
	return true;
}

/* Queue one message (a{sv} body, floating is sunk) to a peer. */
static void conn_send(conn_t *c, smig_msg_type_t type, GVariant *body)
{
	smig_msg_t *msg = smig_msg_new(type, body);
	GError *err = NULL;
	GBytes *frame;

	if (!c || c->dead)
		goto out;
	frame = smig_wire_encode(c->b->auth, msg, &err);
	if (!frame) {
		smig_error("cannot encode %s for %s: %s",
			   smig_msg_type_name(type), c->peer, err->message);
		g_error_free(err);
		goto out;
	}
	smig_debug2("send %s to %s", smig_msg_type_name(type), c->peer);
	c->out_len += g_bytes_get_size(frame);
	g_queue_push_tail(&c->out, frame);
	if (c->out_len > MAX_OUTQ) {
		conn_kill(c, "peer does not read (output queue full)");
		goto out;
	}
	if (!conn_flush(c))
		conn_kill(c, "send failed");
out:
	smig_msg_free(msg);
}

static void send_refused(smig_balancer_t *b, conn_t *c, const smig_msg_t *msg,
			 uint32_t job_id, const char *reason)
{
	const char *what = smig_msg_type_name(msg->type);
	size_t len = strlen(reason);
	char *cut = NULL, *text = NULL;
	GVariantBuilder vb;

	/* Reasons quote the sender's values: a long one must not flood
	 * slurmctld's log (a body may hold 1 MiB). */
	if (len > MAX_REASON) {
		cut = g_utf8_make_valid(reason, MAX_REASON);
		reason = text = g_strdup_printf("%s... (%zu bytes)", cut, len);
	}
	smig_error("refused %s from uid=%u (%s) for JobId=%u: %s", what,
		   msg->uid, c->peer, job_id, reason);
	g_variant_builder_init(&vb, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(&vb, "{sv}", "what", g_variant_new_string(what));
	g_variant_builder_add(&vb, "{sv}", "reason",
			      g_variant_new_string(reason));
	conn_send(c, SMIG_MSG_REFUSED, g_variant_builder_end(&vb));
	g_free(text);
	g_free(cut);
}

/* Start a body with the job and step fields every command carries. */
static void body_init(GVariantBuilder *vb, const step_t *s)
{
	g_variant_builder_init(vb, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(vb, "{sv}", "job",
	                      g_variant_new_uint32(s->job->id));
	g_variant_builder_add(vb, "{sv}", "step",
	                      g_variant_new_uint32(s->step_id));
}

/* Send one body to every connected agent of a step. */
static void send_agents(step_t *s, smig_msg_type_t type, GVariant *body)
{
	g_variant_ref_sink(body);
	for (guint i = 0; i < s->agents->len; i++) {
		agent_t *a = g_ptr_array_index(s->agents, i);

		if (a->conn)
			conn_send(a->conn, type, body);
	}
	g_variant_unref(body);
}

/* ---------------------------------------------------------------- capture */

static char *nodes_joined(const step_t *s, const smig_plan_t *plan, bool to)
{
	GString *str = g_string_new(NULL);
	GPtrArray *seen = g_ptr_array_new();

	for (guint i = 0; i < plan->moves->len; i++) {
		smig_policy_move_t *m = &g_array_index(plan->moves,
						       smig_policy_move_t, i);
		const char *name = s->nodes[to ? m->to : m->from];
		guint k;

		for (k = 0; k < seen->len; k++)
			if (!strcmp(g_ptr_array_index(seen, k), name))
				break;
		if (k < seen->len)
			continue;
		g_ptr_array_add(seen, (gpointer) name);
		g_string_append_printf(str, "%s%s", str->len ? "+" : "", name);
	}
	g_ptr_array_free(seen, TRUE);
	return g_string_free(str, FALSE);
}

static char *plan_ranks(const smig_plan_t *plan)
{
	GString *str = g_string_new(NULL);

	for (guint i = 0; i < plan->moves->len; i++)
		g_string_append_printf(str, "%s%u", i ? "," : "",
				       g_array_index(plan->moves,
						     smig_policy_move_t,
						     i).rank);
	return g_string_free(str, FALSE);
}

/* "ranks=2,3;from=node2;to=node3;reason=drain", caller g_free()s */
static char *plan_move_text(const step_t *s, const smig_plan_t *plan)
{
	char *ranks = plan_ranks(plan);
	char *from = nodes_joined(s, plan, false);
	char *to = nodes_joined(s, plan, true);
	char *text = g_strdup_printf("ranks=%s;from=%s;to=%s;reason=%s",
				     ranks, from, to, plan->reason);

	g_free(ranks);
	g_free(from);
	g_free(to);
	return text;
}

/* Ranks of the capture that have not reached the current phase's mark. */
static char *capture_missing(const step_t *s)
{
	const capture_t *cap = s->cap;
	GString *str = g_string_new(NULL);
	const guint8 *have = cap->phase == PHASE_PREPARE ? cap->counted :
							   cap->done;

	if (cap->phase == PHASE_HANDOFF) {
		for (guint i = 0; i < cap->plan->moves->len; i++) {
			uint32_t r = g_array_index(cap->plan->moves,
						   smig_policy_move_t, i).rank;

			if (r < s->ntasks && !cap->handed[r])
				g_string_append_printf(str, "%s%u",
						       str->len ? "," : "", r);
		}
		return g_string_free(str, FALSE);
	}
	if (cap->phase != PHASE_RELAUNCH)
		for (uint32_t r = 0; r < s->ntasks; r++)
			if (!have[r])
				g_string_append_printf(str, "%s%u",
						       str->len ? "," : "", r);
	return g_string_free(str, FALSE);
}

/*
 * Discard the capture in progress: ABORT to the agents, record the reason,
 * back off for MigrateRetryInterval.
 */
static void capture_abort(smig_balancer_t *b, step_t *s, const char *reason,
			  const char *ranks)
{
	capture_t *cap = s->cap;
	GVariantBuilder vb;
	GVariant *body;

	if (!cap)
		return;
	body_init(&vb, s);
	g_variant_builder_add(&vb, "{sv}", "gen",
	                      g_variant_new_uint64(cap->gen));
	g_variant_builder_add(&vb, "{sv}", "reason",
	                      g_variant_new_string(reason));
	body = g_variant_ref_sink(g_variant_builder_end(&vb));
	/* srun prepared a relaunch for this generation: it must drop it. */
	if (cap->phase == PHASE_RELAUNCH && s->srun)
		conn_send(s->srun, SMIG_MSG_ABORT, body);
	send_agents(s, SMIG_MSG_ABORT, body);
	g_variant_unref(body);

	smig_info("JobId=%u StepId=%u capture aborted gen=%" PRIu64
		  " reason=%s ranks=%s", s->job->id, s->step_id, cap->gen,
		  reason, ranks && ranks[0] ? ranks : "-");
	job_set_error(s->job, cap->gen, reason, ranks);
	/*
	 * Complete images, but never committed: the agents did not add gen
	 * to the manifest, so it is not the job's last good one.
	 */
	if (cap->phase == PHASE_HANDOFF || cap->phase == PHASE_RELAUNCH)
		s->job->last_good = cap->prev_good;
	s->job->retry_after = now_us() +
			      (int64_t) b->conf->retry_interval_ms * 1000;
	g_clear_pointer(&s->cap, capture_free);
	job_publish(b, s->job);
}

static uint32_t capture_timeout_ms(const smig_balancer_t *b, const step_t *s)
{
	if (s->req.capture_timeout_ms)
		return s->req.capture_timeout_ms;
	return b->conf->capture_timeout_ms;
}

/* Start generation gen of a step to carry out plan (taken). */
static void capture_start(smig_balancer_t *b, step_t *s, smig_plan_t *plan)
{
	job_t *j = s->job;
	capture_t *cap = g_new0(capture_t, 1);
	uint32_t timeout = capture_timeout_ms(b, s);
	GVariantBuilder vb;

	/*
	 * A failed generation's images may be left on disk: never reuse its
	 * number, so a stale image can never pass for a new one.
	 */
	cap->gen = MAX(j->last_good, j->last_tried) + 1;
	j->last_tried = cap->gen;
	cap->phase = PHASE_PREPARE;
	cap->deadline = now_us() + (int64_t) timeout * 1000;
	cap->plan = plan;
	cap->pause_at = g_new0(uint64_t, s->ntasks);
	cap->counted = g_new0(guint8, s->ntasks);
	cap->done = g_new0(guint8, s->ntasks);
	s->cap = cap;

	smig_verbose("JobId=%u StepId=%u capture gen=%" PRIu64
		     " timeout_ms=%u for %s", j->id, s->step_id, cap->gen,
		     timeout, plan->text ? plan->text : "");
	body_init(&vb, s);
	g_variant_builder_add(&vb, "{sv}", "gen",
	                      g_variant_new_uint64(cap->gen));
	g_variant_builder_add(&vb, "{sv}", "timeout_ms",
			      g_variant_new_uint32(timeout));
	send_agents(s, SMIG_MSG_PREPARE, g_variant_builder_end(&vb));
}

/* All ranks counted: capture at the highest pause point. */
static void capture_all_counted(smig_balancer_t *b, step_t *s)
{
	capture_t *cap = s->cap;
	uint64_t target = 0;
	GVariantBuilder vb;

	for (uint32_t r = 0; r < s->ntasks; r++)
		target = MAX(target, cap->pause_at[r]);
	cap->phase = PHASE_CAPTURE;
	smig_verbose("JobId=%u StepId=%u capture gen=%" PRIu64
		     " target=%" PRIu64, s->job->id, s->step_id, cap->gen,
		     target);
	body_init(&vb, s);
	g_variant_builder_add(&vb, "{sv}", "gen",
	                      g_variant_new_uint64(cap->gen));
	g_variant_builder_add(&vb, "{sv}", "target",
	                      g_variant_new_uint64(target));
	send_agents(s, SMIG_MSG_CAPTURE, g_variant_builder_end(&vb));
}

/*
 * A capture for later is complete: the ranks go on where they are
 * (COMMIT stop=false), the generation is the job's last good one.
 */
static void capture_commit_stay(smig_balancer_t *b, step_t *s)
{
	capture_t *cap = s->cap;
	GVariantBuilder vb;

	body_init(&vb, s);
	g_variant_builder_add(&vb, "{sv}", "gen",
	                      g_variant_new_uint64(cap->gen));
	g_variant_builder_add(&vb, "{sv}", "stop",
			      g_variant_new_boolean(FALSE));
	send_agents(s, SMIG_MSG_COMMIT, g_variant_builder_end(&vb));
	smig_info("JobId=%u StepId=%u captured gen=%" PRIu64 " reason=%s",
		  s->job->id, s->step_id, cap->gen, cap->plan->reason);
	if (s->req.every_ms)
		s->next_periodic = now_us() + (int64_t) s->req.every_ms * 1000;
	g_clear_pointer(&s->cap, capture_free);
	job_publish(b, s->job);
}

/* A plan in which nobody moves, for a capture for later. RET owned */
static smig_plan_t *plan_stay(const char *reason)
{
	smig_plan_t *plan = g_new0(smig_plan_t, 1);

	plan->moves = g_array_new(FALSE, TRUE, sizeof(smig_policy_move_t));
	plan->reason = g_strdup(reason);
	plan->text = g_strdup("no rank moves");
	return plan;
}

/*
 * MigrateImageStore=local: the agents keep images on their node's disk, so
 * every agent of the step must have a receiver; moves go only to nodes
 * where the step has an agent (see step_poll()).
 */
static bool step_store_local(const step_t *s)
{
	if (!s->agents->len)
		return false;
	for (guint i = 0; i < s->agents->len; i++) {
		agent_t *a = g_ptr_array_index(s->agents, i);

		if (!a->handoff_port)
			return false;
	}
	return true;
}

static agent_t *step_agent_on(const step_t *s, uint32_t node_idx)
{
	for (guint i = 0; i < s->agents->len; i++) {
		agent_t *a = g_ptr_array_index(s->agents, i);

		if (a->conn && a->node_idx == node_idx)
			return a;
	}
	return NULL;
}

/*
 * Node-local store: each moving rank's image goes from the agent of its
 * node to the agent of its target node (HANDOFF), which writes and verifies
 * it; only then may srun relaunch (nothing is lost if a node dies now).
 */
static void capture_handoff(smig_balancer_t *b, step_t *s)
{
	capture_t *cap = s->cap;
	GVariantBuilder vb;

	cap->phase = PHASE_HANDOFF;
	cap->handed = g_new0(guint8, s->ntasks);
	cap->deadline = now_us() + (int64_t) capture_timeout_ms(b, s) * 1000;
	for (guint i = 0; i < cap->plan->moves->len; i++) {
		smig_policy_move_t *m = &g_array_index(cap->plan->moves,
						       smig_policy_move_t, i);
		agent_t *from = m->rank < s->ntasks ? s->rank_agent[m->rank] :
			NULL;
		agent_t *to = m->to < s->nnodes ? step_agent_on(s, m->to) :
			NULL;
		char *r;

		if (!from || !from->conn || !to || !to->addr) {
			r = g_strdup_printf("%u", m->rank);
			capture_abort(b, s, "handoff-failed", r);
			g_free(r);
			return;
		}
		body_init(&vb, s);
		g_variant_builder_add(&vb, "{sv}", "gen",
				      g_variant_new_uint64(cap->gen));
		g_variant_builder_add(&vb, "{sv}", "rank",
				      g_variant_new_uint32(m->rank));
		g_variant_builder_add(&vb, "{sv}", "to_node",
				      g_variant_new_string(to->node));
		g_variant_builder_add(&vb, "{sv}", "addr",
				      g_variant_new_string(to->addr));
		g_variant_builder_add(&vb, "{sv}", "port",
				      g_variant_new_uint32(to->handoff_port));
		conn_send(from->conn, SMIG_MSG_HANDOFF,
			  g_variant_builder_end(&vb));
		cap->nhandoff++;
		smig_verbose("JobId=%u StepId=%u gen=%" PRIu64
			     " hand-off of rank %u %s->%s", s->job->id,
			     s->step_id, cap->gen, m->rank, from->node,
			     to->node);
	}
	if (!cap->nhandoff)
		capture_relaunch(b, s);
}

/* All images good: tell srun the new mapping. */
static void capture_all_done(smig_balancer_t *b, step_t *s)
{
	capture_t *cap = s->cap;

	cap->prev_good = s->job->last_good;
	s->job->last_good = cap->gen;
	if (!cap->plan->moves->len) {
		/* A capture for later (every=, REQUEST): nobody moves. */
		capture_commit_stay(b, s);
		return;
	}
	if (step_store_local(s)) {
		capture_handoff(b, s);
		return;
	}
	capture_relaunch(b, s);
}

/* Images are where the moved ranks will restore: tell srun the mapping. */
static void capture_relaunch(smig_balancer_t *b, step_t *s)
{
	capture_t *cap = s->cap;
	uint32_t *node_of = g_new(uint32_t, s->ntasks);
	GString *hf = g_string_new(NULL);
	GVariantBuilder vb;

	for (uint32_t r = 0; r < s->ntasks; r++)
		node_of[r] = s->rank_agent[r]->node_idx;
	for (guint i = 0; i < cap->plan->moves->len; i++) {
		smig_policy_move_t *m = &g_array_index(cap->plan->moves,
						       smig_policy_move_t, i);

		if (m->rank < s->ntasks && m->to < s->nnodes)
			node_of[m->rank] = m->to;
	}
	for (uint32_t r = 0; r < s->ntasks; r++)
		g_string_append_printf(hf, "%s\n", s->nodes[node_of[r]]);
	g_free(node_of);
	cap->hostfile = g_string_free(hf, FALSE);
	cap->phase = PHASE_RELAUNCH;
	smig_verbose("JobId=%u StepId=%u gen=%" PRIu64
		     " complete, asking srun to relaunch", s->job->id,
		     s->step_id, cap->gen);
	job_publish(b, s->job);

	if (!s->srun) {
		capture_abort(b, s, "srun-lost", NULL);
		return;
	}
	body_init(&vb, s);
	g_variant_builder_add(&vb, "{sv}", "gen",
	                      g_variant_new_uint64(cap->gen));
	g_variant_builder_add(&vb, "{sv}", "hostfile",
			      g_variant_new_string(cap->hostfile));
	g_variant_builder_add(&vb, "{sv}", "reason",
			      g_variant_new_string(cap->plan->reason));
	conn_send(s->srun, SMIG_MSG_RELAUNCH, g_variant_builder_end(&vb));
}

/* srun will relaunch: the ranks may stop now. */
static void capture_commit(smig_balancer_t *b, step_t *s)
{
	capture_t *cap = s->cap;
	job_t *j = s->job;
	char *ranks, *from, *to;
	GVariantBuilder vb;
	GVariant *body;

	body_init(&vb, s);
	g_variant_builder_add(&vb, "{sv}", "gen",
	                      g_variant_new_uint64(cap->gen));
	g_variant_builder_add(&vb, "{sv}", "stop", g_variant_new_boolean(TRUE));
	body = g_variant_ref_sink(g_variant_builder_end(&vb));
	/*
	 * srun first: from its COMMIT on, srun relaunches when the step
	 * ends; the ranks stop on theirs.
	 */
	conn_send(s->srun, SMIG_MSG_COMMIT, body);
	send_agents(s, SMIG_MSG_COMMIT, body);
	g_variant_unref(body);

	ranks = plan_ranks(cap->plan);
	from = nodes_joined(s, cap->plan, false);
	to = nodes_joined(s, cap->plan, true);
	smig_info("JobId=%u ranks=%s %s->%s gen=%" PRIu64 " reason=%s",
		  j->id, ranks, from, to, cap->gen, cap->plan->reason);
	g_free(ranks);
	g_free(from);
	g_free(to);

	j->moves++;
	g_free(j->last_move);
	j->last_move = plan_move_text(s, cap->plan);
	s->committed = true;
	g_clear_pointer(&s->cap, capture_free);
	job_publish(b, j);
}

/* ---------------------------------------------------------------- policy */

/*
 * One step's turn at the poll: deadline of a capture in progress, or the
 * node states of its allocation and, if ranks must leave, a plan.
 */
static void step_poll(smig_balancer_t *b, step_t *s, int64_t now)
{
	job_t *j = s->job;
	smig_policy_node_t *nodes;
	uint32_t *rank_node;
	smig_plan_t *plan;
	GError *err = NULL;
	bool leave = false, unknown = false;

	if (s->cap) {
		if (now >= s->cap->deadline) {
			char *missing = capture_missing(s);

			capture_abort(b, s, s->cap->phase == PHASE_HANDOFF ?
				      "handoff-timeout" : "capture-timeout",
				      missing);
			g_free(missing);
		}
		return;
	}
	if (s->committed || !s->registered ||
	    (s->req.mode != SMIG_MODE_AUTO && s->req.mode != SMIG_MODE_MANUAL &&
	     s->req.mode != SMIG_MODE_ADVISE) ||
	    !s->srun || !step_map_complete(s) ||
	    (j->retry_after && now < j->retry_after))
		return;

	nodes = g_new0(smig_policy_node_t, s->nnodes);
	for (uint32_t n = 0; n < s->nnodes; n++) {
		nodes[n].name = s->nodes[n];
		nodes[n].slots = s->slots[n];
		if (!b->ops.node_flags(b->ops.ctx, s->nodes[n],
				       &nodes[n].flags)) {
			smig_debug("JobId=%u: node %s unknown to the host",
				   j->id, s->nodes[n]);
			unknown = true;
		}
	}
	/* A node-local store can hand images only to a node where the
	 * step has an agent: other nodes cannot be targets. */
	if (step_store_local(s))
		for (uint32_t n = 0; n < s->nnodes; n++)
			if (!step_agent_on(s, n))
				nodes[n].slots = 0;
	rank_node = g_new(uint32_t, s->ntasks);
	for (uint32_t r = 0; r < s->ntasks; r++) {
		rank_node[r] = s->rank_agent[r]->node_idx;
		if (nodes[rank_node[r]].flags != SMIG_NODE_OK)
			leave = true;
	}
	if (unknown)
		goto out;
	if (!leave && s->req.every_ms && now >= s->next_periodic) {
		s->next_periodic = now + (int64_t) s->req.every_ms * 1000;
		capture_start(b, s, plan_stay("periodic"));
		goto out;
	}
	if (!leave) {
		/* Nothing to advise any more: the nodes are fine again. */
		if (j->advice && s->req.mode == SMIG_MODE_ADVISE) {
			g_clear_pointer(&j->advice, g_free);
			job_publish(b, j);
		}
		goto out;
	}

	plan = smig_policy_evacuate(nodes, s->nnodes, rank_node, s->ntasks,
				    &err);
	if (!plan) {
		smig_verbose("JobId=%u StepId=%u cannot evacuate: %s", j->id,
			     s->step_id, err->message);
		g_error_free(err);
		job_set_error(j, MAX(j->last_good, j->last_tried) + 1,
			      "no-spare", NULL);
		j->retry_after = now + (int64_t) b->conf->retry_interval_ms *
				       1000;
		job_publish(b, j);
		goto out;
	}
	if (!plan->moves->len) {
		smig_plan_free(plan);
		goto out;
	}
	if (s->req.mode == SMIG_MODE_ADVISE) {
		char *advice = plan_move_text(s, plan);

		if (g_strcmp0(advice, j->advice))
			smig_verbose("JobId=%u StepId=%u advise: %s", j->id,
				     s->step_id, advice);
		g_free(j->advice);
		j->advice = advice;
		smig_plan_free(plan);
		job_publish(b, j);
		goto out;
	}
	if (s->req.max_moves && j->moves >= s->req.max_moves) {
		smig_verbose("JobId=%u StepId=%u not moving: max-moves=%u reached",
			     j->id, s->step_id, s->req.max_moves);
		job_set_error(j, MAX(j->last_good, j->last_tried) + 1,
			      "max-moves", NULL);
		j->retry_after = now + (int64_t) b->conf->retry_interval_ms *
				       1000;
		smig_plan_free(plan);
		job_publish(b, j);
		goto out;
	}
	capture_start(b, s, plan);
out:
	g_free(rank_node);
	g_free(nodes);
}

static gboolean poll_timer(gpointer data)
{
	smig_balancer_t *b = data;
	int64_t now = now_us();
	GHashTableIter it;
	gpointer v;
	GPtrArray *list = g_ptr_array_new();

	/* step_poll() may publish, never remove: iterate over a copy anyway. */
	g_hash_table_iter_init(&it, b->steps);
	while (g_hash_table_iter_next(&it, NULL, &v))
		g_ptr_array_add(list, v);
	for (guint i = 0; i < list->len; i++)
		step_poll(b, g_ptr_array_index(list, i), now);
	g_ptr_array_free(list, TRUE);

	/* Forget jobs without steps once the host says they are over. */
	g_hash_table_iter_init(&it, b->jobs);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		job_t *j = v;
		uint32_t uid;

		if (j->samples_new) {
			j->samples_new = false;
			job_publish(b, j);
		}

		if (j->nsteps ||
		    b->ops.job_owner(b->ops.ctx, j->id, &uid))
			continue;
		smig_debug("JobId=%u ended, state dropped", j->id);
		g_hash_table_iter_remove(&it);
	}

	/* A connection slot held by a peer that never says who it is (no
	 * authenticated message) is given back; conn_kill() only queues. */
	g_hash_table_iter_init(&it, b->conns);
	while (g_hash_table_iter_next(&it, &v, NULL)) {
		conn_t *c = v;

		if (!c->spoke && !c->dead &&
		    now - c->accepted > (int64_t) IDLE_POLLS *
		    MAX(b->conf->poll_interval_ms, 1) * 1000)
			conn_kill(c, "no message from the peer");
	}
	return G_SOURCE_CONTINUE;
}

/* ---------------------------------------------------------------- messages */

static bool uid_may(const smig_balancer_t *b, uint32_t uid, uint32_t owner)
{
	return uid == 0 || uid == b->admin_uid || uid == owner;
}

/*
 * Fetch required fields; on a missing one, refuse naming it.
 * RET false if refused.
 */
static bool need_u32(smig_balancer_t *b, conn_t *c, const smig_msg_t *m,
		     uint32_t job_id, const char *key, uint32_t *out)
{
	char *why;

	if (smig_msg_get_u32(m, key, out))
		return true;
	why = g_strdup_printf("field %s missing or not of type u", key);
	send_refused(b, c, m, job_id, why);
	g_free(why);
	return false;
}

static bool need_u64(smig_balancer_t *b, conn_t *c, const smig_msg_t *m,
		     uint32_t job_id, const char *key, uint64_t *out)
{
	char *why;

	if (smig_msg_get_u64(m, key, out))
		return true;
	why = g_strdup_printf("field %s missing or not of type t", key);
	send_refused(b, c, m, job_id, why);
	g_free(why);
	return false;
}

static bool need_str(smig_balancer_t *b, conn_t *c, const smig_msg_t *m,
		     uint32_t job_id, const char *key, const char **out)
{
	char *why;

	if (smig_msg_get_str(m, key, out))
		return true;
	why = g_strdup_printf("field %s missing or not of type s", key);
	send_refused(b, c, m, job_id, why);
	g_free(why);
	return false;
}

/* Check that a HELLO comes from someone allowed; find or make the job. */
static job_t *hello_job(smig_balancer_t *b, conn_t *c, const smig_msg_t *m,
			uint32_t job_id)
{
	job_t *j;
	uint32_t owner;
	char *why;

	if (c->role != ROLE_NONE) {
		send_refused(b, c, m, job_id,
			     "connection already registered");
		return NULL;
	}
	if (!b->ops.job_owner(b->ops.ctx, job_id, &owner)) {
		send_refused(b, c, m, job_id, "job is not running");
		return NULL;
	}
	if (!uid_may(b, m->uid, owner)) {
		why = g_strdup_printf("uid %u is not the owner (uid %u) of the job",
				      m->uid, owner);
		send_refused(b, c, m, job_id, why);
		g_free(why);
		return NULL;
	}
	j = g_hash_table_lookup(b->jobs, GUINT_TO_POINTER(job_id));
	if (!j) {
		j = g_new0(job_t, 1);
		j->id = job_id;
		g_hash_table_insert(b->jobs, GUINT_TO_POINTER(job_id), j);
	}
	j->uid = owner;
	return j;
}

static step_t *step_new(smig_balancer_t *b, job_t *j, uint32_t step_id)
{
	step_t *s = g_new0(step_t, 1);

	s->key = step_key(j->id, step_id);
	s->step_id = step_id;
	s->job = j;
	s->agents = g_ptr_array_new_with_free_func((GDestroyNotify) agent_free);
	smig_request_init(&s->req);
	j->nsteps++;
	g_hash_table_insert(b->steps, &s->key, s);
	return s;
}

/* Parse the allocation of a HELLO_SRUN into s. RET false, *why set */
static bool srun_alloc(step_t *s, const char *alloc_nodes,
		       const char *alloc_cpus, uint32_t cpus_per_task,
		       char **why)
{
	GError *err = NULL;
	GArray *cpus;
	char **nodes;
	guint n;

	nodes = smig_hostlist_expand(alloc_nodes, &err);
	if (!nodes) {
		*why = g_strdup_printf("alloc_nodes=%s: %s", alloc_nodes,
				       err->message);
		g_error_free(err);
		return false;
	}
	n = g_strv_length(nodes);
	if (n == 0 || n > MAX_NODES) {
		*why = g_strdup_printf("alloc_nodes=%s: %u nodes (1 to %u accepted)",
				       alloc_nodes, n, MAX_NODES);
		g_strfreev(nodes);
		return false;
	}
	cpus = smig_counts_expand(alloc_cpus, &err);
	if (!cpus) {
		*why = g_strdup_printf("alloc_cpus=%s: %s", alloc_cpus,
				       err->message);
		g_error_free(err);
		g_strfreev(nodes);
		return false;
	}
	if (cpus->len != n) {
		*why = g_strdup_printf("alloc_cpus=%s: %u counts for %u nodes (%s)",
				       alloc_cpus, cpus->len, n, alloc_nodes);
		g_array_unref(cpus);
		g_strfreev(nodes);
		return false;
	}
	s->nodes = nodes;
	s->nnodes = n;
	s->slots = g_new(uint32_t, n);
	for (guint i = 0; i < n; i++)
		s->slots[i] = g_array_index(cpus, uint32_t, i) /
			      MAX(cpus_per_task, 1);
	g_array_unref(cpus);
	return true;
}

static void on_hello_srun(smig_balancer_t *b, conn_t *c, const smig_msg_t *m)
{
	uint32_t job_id, step_id, ntasks, cpt = 1, prev_step;
	uint64_t restored = 0;
	const char *request, *alloc_nodes, *alloc_cpus;
	smig_request_t req;
	GError *err = NULL;
	char *why = NULL;
	job_t *j;
	step_t *s;

	if (!need_u32(b, c, m, 0, "job", &job_id) ||
	    !need_u32(b, c, m, job_id, "step", &step_id) ||
	    !need_str(b, c, m, job_id, "request", &request) ||
	    !need_u32(b, c, m, job_id, "ntasks", &ntasks) ||
	    !need_str(b, c, m, job_id, "alloc_nodes", &alloc_nodes) ||
	    !need_str(b, c, m, job_id, "alloc_cpus", &alloc_cpus))
		return;
	smig_msg_get_u32(m, "cpus_per_task", &cpt);
	smig_msg_get_u64(m, "restored_gen", &restored);
	if (ntasks == 0 || ntasks > MAX_RANKS) {
		why = g_strdup_printf("ntasks=%u: 1 to %u accepted", ntasks,
				      MAX_RANKS);
		goto refuse;
	}
	if (!smig_request_parse(request, &req, &err)) {
		why = g_strdup_printf("request=%s: %s", request, err->message);
		g_error_free(err);
		goto refuse;
	}
	if (!(j = hello_job(b, c, m, job_id)))
		return;

	s = step_find(b, job_id, step_id);
	if (s && (s->registered || s->srun)) {
		why = g_strdup_printf("StepId=%u already registered", step_id);
		goto refuse;
	}
	if (!s && g_hash_table_size(b->steps) >= MAX_STEPS) {
		why = g_strdup_printf("too many steps tracked (%u)", MAX_STEPS);
		goto refuse;
	}
	/* One user's job must not take every slot from the others. */
	if (!s && j->nsteps >= MAX_JOB_STEPS) {
		why = g_strdup_printf("too many steps of JobId=%u tracked (%u)",
				      j->id, MAX_JOB_STEPS);
		goto refuse;
	}
	if (!s)
		s = step_new(b, j, step_id);
	if (!srun_alloc(s, alloc_nodes, alloc_cpus, cpt, &why)) {
		step_maybe_remove(b, s);
		goto refuse;
	}
	s->req = req;
	s->ntasks = ntasks;
	s->rank_agent = g_new0(agent_t *, ntasks);
	s->registered = true;
	s->next_periodic = now_us() + (int64_t) req.every_ms * 1000;
	s->srun = c;
	c->role = ROLE_SRUN;
	c->step = s;
	j->mode = req.mode;

	/* Agents that came first: place their ranks now. */
	for (guint i = 0; i < s->agents->len; i++) {
		agent_t *a = g_ptr_array_index(s->agents, i);
		char *bad = NULL;

		if (a->conn && !step_index_agent(s, a, &bad)) {
			smig_error("JobId=%u StepId=%u agent %s: %s", job_id,
				   step_id, a->conn->peer, bad);
			g_free(bad);
			conn_kill(a->conn, "inconsistent registration");
		}
	}

	/* A relaunched step replaces the one it was moved from. */
	if (restored && smig_msg_get_u32(m, "prev_step", &prev_step)) {
		step_t *old = step_find(b, job_id, prev_step);

		if (old && old != s)
			step_remove(b, old);
		j->last_good = MAX(j->last_good, restored);
		j->last_tried = MAX(j->last_tried, restored);
		g_clear_pointer(&j->advice, g_free);
	}
	smig_verbose("JobId=%u StepId=%u registered by srun %s uid=%u: %s ntasks=%u nodes=%s restored_gen=%" PRIu64,
		     job_id, step_id, c->peer, m->uid, request, ntasks,
		     alloc_nodes, restored);
	job_publish(b, j);
	return;
refuse:
	send_refused(b, c, m, job_id, why);
	g_free(why);
}

static void on_hello_agent(smig_balancer_t *b, conn_t *c, const smig_msg_t *m)
{
	uint32_t job_id, step_id, *ranks = NULL, port = 0;
	size_t nranks = 0;
	const char *node;
	char *why = NULL;
	agent_t *a;
	job_t *j;
	step_t *s;

	if (!need_u32(b, c, m, 0, "job", &job_id) ||
	    !need_u32(b, c, m, job_id, "step", &step_id) ||
	    !need_str(b, c, m, job_id, "node", &node))
		return;
	if (!smig_msg_get_u32_array(m, "ranks", &ranks, &nranks)) {
		send_refused(b, c, m, job_id,
			     "field ranks missing or not of type au");
		return;
	}
	if (!node[0]) {
		why = g_strdup("node: empty name");
		goto refuse;
	}
	if (nranks == 0 || nranks > MAX_RANKS) {
		why = g_strdup_printf("node=%s: %zu ranks (1 to %u accepted)",
				      node, nranks, MAX_RANKS);
		goto refuse;
	}
	if (!(j = hello_job(b, c, m, job_id)))
		goto out;
	s = step_find(b, job_id, step_id);
	if (!s && g_hash_table_size(b->steps) >= MAX_STEPS) {
		why = g_strdup_printf("too many steps tracked (%u)", MAX_STEPS);
		goto refuse;
	}
	/* One user's job must not take every slot from the others. */
	if (!s && j->nsteps >= MAX_JOB_STEPS) {
		why = g_strdup_printf("too many steps of JobId=%u tracked (%u)",
				      j->id, MAX_JOB_STEPS);
		goto refuse;
	}
	if (s && s->committed) {
		why = g_strdup_printf("StepId=%u is ending (moved)", step_id);
		goto refuse;
	}
	for (guint i = 0; s && i < s->agents->len; i++) {
		a = g_ptr_array_index(s->agents, i);
		if (!strcmp(a->node, node)) {
			why = g_strdup_printf("node=%s already registered",
					      node);
			goto refuse;
		}
	}
	if (!s)
		s = step_new(b, j, step_id);
	a = g_new0(agent_t, 1);
	a->node = g_strdup(node);
	a->ranks = ranks;
	a->nranks = nranks;
	if (smig_msg_get_u32(m, "handoff_port", &port) && port &&
	    port <= UINT16_MAX) {
		const char *colon = strrchr(c->peer, ':');

		a->handoff_port = port;
		/* "addr:port" or "[v6addr]:port" as address_text() made it */
		a->addr = colon ? g_strndup(c->peer, colon - c->peer) :
				  g_strdup(c->peer);
		if (a->addr[0] == '[') {
			size_t l = strlen(a->addr);

			memmove(a->addr, a->addr + 1, l);
			if (l >= 2 && a->addr[l - 2] == ']')
				a->addr[l - 2] = '\0';
		}
	}
	ranks = NULL;
	if (s->registered && !step_index_agent(s, a, &why)) {
		agent_free(a);
		step_maybe_remove(b, s);
		goto refuse;
	}
	a->conn = c;
	g_ptr_array_add(s->agents, a);
	c->role = ROLE_AGENT;
	c->step = s;
	c->agent = a;
	smig_verbose("JobId=%u StepId=%u agent %s node=%s uid=%u ranks=%zu",
		     job_id, step_id, c->peer, node, m->uid, nranks);
	goto out;
refuse:
	send_refused(b, c, m, job_id, why);
	g_free(why);
out:
	g_free(ranks);
}

/*
 * Common checks of a message on a registered connection: the role, the
 * sender, the job and step fields. RET the step, or NULL if refused.
 */
static step_t *bound_step(smig_balancer_t *b, conn_t *c, const smig_msg_t *m,
			  conn_role_t role)
{
	uint32_t job_id = 0, step_id;
	step_t *s = c->step;
	char *why;

	smig_msg_get_u32(m, "job", &job_id);
	if (c->role != role || !s) {
		send_refused(b, c, m, job_id,
			     role == ROLE_SRUN ?
			     "connection is not registered as srun" :
			     "connection is not registered as an agent");
		return NULL;
	}
	if (!need_u32(b, c, m, job_id, "job", &job_id) ||
	    !need_u32(b, c, m, job_id, "step", &step_id))
		return NULL;
	if (job_id != s->job->id || step_id != s->step_id) {
		why = g_strdup_printf("connection is registered for JobId=%u StepId=%u, not StepId=%u",
				      s->job->id, s->step_id, step_id);
		send_refused(b, c, m, job_id, why);
		g_free(why);
		return NULL;
	}
	if (!uid_may(b, m->uid, s->job->uid)) {
		why = g_strdup_printf("uid %u is not the owner (uid %u) of the job",
				      m->uid, s->job->uid);
		send_refused(b, c, m, job_id, why);
		g_free(why);
		return NULL;
	}
	return s;
}

/* Rank and gen of COUNT/DONE; RET false if stale or refused */
static bool rank_msg(smig_balancer_t *b, conn_t *c, const smig_msg_t *m,
		     step_t *s, phase_t phase, uint32_t *rank)
{
	uint64_t gen;
	char *why;
	size_t i;

	if (!need_u64(b, c, m, s->job->id, "gen", &gen) ||
	    !need_u32(b, c, m, s->job->id, "rank", rank))
		return false;
	for (i = 0; i < c->agent->nranks; i++)
		if (c->agent->ranks[i] == *rank)
			break;
	if (i == c->agent->nranks) {
		why = g_strdup_printf("rank=%u is not on node %s", *rank,
				      c->agent->node);
		send_refused(b, c, m, s->job->id, why);
		g_free(why);
		return false;
	}
	if (!s->cap || s->cap->gen != gen || s->cap->phase != phase) {
		smig_debug("JobId=%u StepId=%u stale %s gen=%" PRIu64
			   " rank=%u ignored", s->job->id, s->step_id,
			   smig_msg_type_name(m->type), gen, *rank);
		return false;
	}
	return true;
}

static void on_count(smig_balancer_t *b, conn_t *c, const smig_msg_t *m)
{
	step_t *s = bound_step(b, c, m, ROLE_AGENT);
	uint64_t pause_at;
	uint32_t rank;

	if (!s || !rank_msg(b, c, m, s, PHASE_PREPARE, &rank) ||
	    !need_u64(b, c, m, s->job->id, "pause_at", &pause_at))
		return;
	smig_debug("JobId=%u StepId=%u COUNT rank=%u pause_at=%" PRIu64,
		   s->job->id, s->step_id, rank, pause_at);
	if (!s->cap->counted[rank]) {
		s->cap->counted[rank] = 1;
		s->cap->ncounted++;
	}
	s->cap->pause_at[rank] = pause_at;
	if (s->cap->ncounted == s->ntasks)
		capture_all_counted(b, s);
}

/*
 * A rank's result for the capture in progress (DONE in PHASE_CAPTURE, a
 * hand-off report in PHASE_HANDOFF): a failure aborts the capture.
 * RET the step if the rank succeeded, NULL otherwise (ignored or aborted)
 */
static step_t *rank_result(smig_balancer_t *b, conn_t *c, const smig_msg_t *m,
			   phase_t phase, const char *what,
			   const char *reason, uint32_t *rank)
{
	step_t *s = bound_step(b, c, m, ROLE_AGENT);
	const char *text = "";
	int32_t status = -1;
	char *r;

	if (!s || !rank_msg(b, c, m, s, phase, rank))
		return NULL;
	smig_msg_get_i32(m, "status", &status);
	smig_msg_get_str(m, "msg", &text);
	if (status == 0)
		return s;
	smig_info("JobId=%u StepId=%u rank=%u %s gen=%" PRIu64
		  " failed: status=%d %s", s->job->id, s->step_id, *rank,
		  what, s->cap->gen, status, text);
	r = g_strdup_printf("%u", *rank);
	capture_abort(b, s, reason, r);
	g_free(r);
	return NULL;
}

static void on_done(smig_balancer_t *b, conn_t *c, const smig_msg_t *m)
{
	uint32_t rank;
	step_t *s = rank_result(b, c, m, PHASE_CAPTURE, "capture",
				"capture-failed", &rank);

	if (!s)
		return;
	smig_debug("JobId=%u StepId=%u DONE rank=%u", s->job->id, s->step_id,
		   rank);
	if (!s->cap->done[rank]) {
		s->cap->done[rank] = 1;
		s->cap->ndone++;
	}
	if (s->cap->ndone == s->ntasks)
		capture_all_done(b, s);
}

/* An agent says how the hand-off of one of its ranks' images went. */
static void on_handoff(smig_balancer_t *b, conn_t *c, const smig_msg_t *m)
{
	uint32_t rank;
	step_t *s = rank_result(b, c, m, PHASE_HANDOFF, "hand-off",
				"handoff-failed", &rank);

	if (!s || s->cap->handed[rank])
		return;
	s->cap->handed[rank] = 1;
	smig_debug("JobId=%u StepId=%u hand-off of rank %u done", s->job->id,
		   s->step_id, rank);
	if (--s->cap->nhandoff == 0)
		capture_relaunch(b, s);
}

static void on_relaunch_ack(smig_balancer_t *b, conn_t *c, const smig_msg_t *m)
{
	step_t *s = bound_step(b, c, m, ROLE_SRUN);
	uint64_t gen;

	if (!s || !need_u64(b, c, m, s->job->id, "gen", &gen))
		return;
	if (!s->cap || s->cap->phase != PHASE_RELAUNCH || s->cap->gen != gen) {
		smig_debug("JobId=%u StepId=%u stale RELAUNCH_ACK gen=%" PRIu64
			   " ignored", s->job->id, s->step_id, gen);
		return;
	}
	capture_commit(b, s);
}

/* The peer says its side of the step is over. */
static void on_bye(smig_balancer_t *b, conn_t *c, const smig_msg_t *m)
{
	int32_t status = 0;
	step_t *s;

	/* A step replaced by its relaunch: its peers leave unnoticed. */
	if (c->role == ROLE_NONE) {
		conn_kill(c, NULL);
		return;
	}
	s = bound_step(b, c, m, c->role);
	if (!s)
		return;
	smig_msg_get_i32(m, "status", &status);
	smig_debug("JobId=%u StepId=%u BYE from %s status=%d", s->job->id,
		   s->step_id, c->peer, status);
	c->bye = true;
	/* The rest is what a close does; the socket closes soon after. */
	conn_kill(c, NULL);
}

/* A fixed-size array field of a SAMPLE, n elements; RET borrowed or NULL */
static const void *sample_array(const smig_msg_t *m, const char *key,
				const char *type, size_t elem, size_t n)
{
	GVariant *v = g_variant_lookup_value(m->body, key,
					     G_VARIANT_TYPE(type));
	const void *data;
	gsize got = 0;

	if (!v)
		return NULL;
	data = g_variant_get_fixed_array(v, &got, elem);
	/* The message holds the body, so the data outlives v. */
	g_variant_unref(v);
	return got == n ? data : NULL;
}

/*
 * on_sample - an agent's samples of one interval: its node, then each of
 * its ranks, then the traffic its ranks sent. A bad entry is skipped with
 * one log line; a malformed message is refused as a whole.
 */
static void on_sample(smig_balancer_t *b, conn_t *c, const smig_msg_t *m)
{
	step_t *s = bound_step(b, c, m, ROLE_AGENT);
	smig_node_sample_t ns = { 0 };
	const double *cpu, *delay, *iters;
	const guint64 *rss;
	uint32_t *ranks = NULL, interval = 0;
	const char *health = "unknown";
	size_t nranks = 0;
	GVariant *pairs;
	GError *err = NULL;
	job_t *j;

	if (!s)
		return;
	j = s->job;
	if (!smig_msg_get_u32_array(m, "ranks", &ranks, &nranks) ||
	    !(cpu = sample_array(m, "cpu", "ad", sizeof(double), nranks)) ||
	    !(delay = sample_array(m, "delay", "ad", sizeof(double), nranks)) ||
	    !(iters = sample_array(m, "iters", "ad", sizeof(double), nranks)) ||
	    !(rss = sample_array(m, "rss", "at", sizeof(guint64), nranks))) {
		send_refused(b, c, m, j->id,
			     "fields ranks (au), cpu, delay, iters (ad) and rss (at) missing or of different lengths");
		goto out;
	}
	ns.node = c->agent->node;
	smig_msg_get_u32(m, "interval_ms", &interval);
	smig_msg_get_u64(m, "mem_avail", &ns.mem_avail);
	smig_msg_get_str(m, "reason", &ns.reason);
	smig_msg_get_str(m, "health", &health);
	if (!g_variant_lookup(m->body, "load", "d", &ns.load))
		ns.load = 0;
	if (!strcmp(health, "ok"))
		ns.health = SMIG_HEALTH_OK;
	else if (!strcmp(health, "warn"))
		ns.health = SMIG_HEALTH_WARN;
	else if (!strcmp(health, "fail"))
		ns.health = SMIG_HEALTH_FAIL;
	if (!j->metrics)
		j->metrics = smig_metrics_new();
	if (interval)
		j->sample_ms = interval;
	if (!smig_metrics_add_node(j->metrics, &ns, &err)) {
		smig_error("JobId=%u StepId=%u SAMPLE from node=%s skipped: %s",
			   j->id, s->step_id, ns.node, err->message);
		g_clear_error(&err);
		goto out;
	}
	for (size_t i = 0; i < nranks; i++) {
		smig_rank_sample_t rs = { ranks[i], cpu[i], delay[i], rss[i],
					  iters[i] };
		size_t k;

		for (k = 0; k < c->agent->nranks; k++)
			if (c->agent->ranks[k] == ranks[i])
				break;
		if (k == c->agent->nranks) {
			smig_error("JobId=%u StepId=%u SAMPLE from node=%s: rank=%u is not on that node, skipped",
				   j->id, s->step_id, ns.node, ranks[i]);
			continue;
		}
		if (!smig_metrics_add_rank(j->metrics, ns.node, &rs, &err)) {
			smig_error("JobId=%u StepId=%u SAMPLE from node=%s skipped: %s",
				   j->id, s->step_id, ns.node, err->message);
			g_clear_error(&err);
		}
	}
	pairs = g_variant_lookup_value(m->body, "pairs",
				       G_VARIANT_TYPE("a(uutt)"));
	for (gsize i = 0; pairs && i < g_variant_n_children(pairs); i++) {
		smig_pair_sample_t ps;
		guint64 bytes, msgs;
		size_t k;

		g_variant_get_child(pairs, i, "(uutt)", &ps.src, &ps.dst,
				    &bytes, &msgs);
		ps.bytes = bytes;
		ps.msgs = msgs;
		for (k = 0; k < c->agent->nranks; k++)
			if (c->agent->ranks[k] == ps.src)
				break;
		if (k == c->agent->nranks) {
			smig_error("JobId=%u StepId=%u SAMPLE from node=%s: pair %u->%u: rank %u is not on that node, skipped",
				   j->id, s->step_id, ns.node, ps.src, ps.dst,
				   ps.src);
			continue;
		}
		if (!smig_metrics_set_pair(j->metrics, &ps, &err)) {
			smig_error("JobId=%u StepId=%u SAMPLE from node=%s: %s; rest of its pairs skipped",
				   j->id, s->step_id, ns.node, err->message);
			g_clear_error(&err);
			break;
		}
	}
	if (pairs)
		g_variant_unref(pairs);
	smig_debug("JobId=%u StepId=%u SAMPLE node=%s ranks=%zu", j->id,
		   s->step_id, ns.node, nranks);
	/* The summary walks every rank of the job: once per poll, not once
	 * per SAMPLE (a job's agents all send within one interval). */
	j->samples_new = true;
out:
	g_free(ranks);
}

/*
 * on_query - a job's state and monitoring data for its owner or an admin
 * (the smig CLI); answered with STATUS on the same connection
 */
/*
 * REQUEST(job, what=capture[, step]): a capture for later, now, of every
 * registered step of the job (or the one given) that has no capture in
 * progress. Owner, root or SlurmUser. REPLY says which generations started;
 * the requester follows them with QUERY (gen= of the state line).
 */
static void on_request(smig_balancer_t *b, conn_t *c, const smig_msg_t *m)
{
	GVariantBuilder vb;
	GString *started = g_string_new(NULL), *busy = g_string_new(NULL);
	uint32_t job_id, step_id = UINT32_MAX;
	const char *what;
	GHashTableIter it;
	gpointer v;
	char *why;
	job_t *j;

	if (!need_u32(b, c, m, 0, "job", &job_id) ||
	    !need_str(b, c, m, job_id, "what", &what))
		goto out;
	smig_msg_get_u32(m, "step", &step_id);
	j = g_hash_table_lookup(b->jobs, GUINT_TO_POINTER(job_id));
	if (!j) {
		send_refused(b, c, m, job_id,
			     "job not known to the balancer (no step with --migrate is running)");
		goto out;
	}
	if (!uid_may(b, m->uid, j->uid)) {
		why = g_strdup_printf("uid %u is not the owner (uid %u) of the job",
				      m->uid, j->uid);
		send_refused(b, c, m, job_id, why);
		g_free(why);
		goto out;
	}
	if (strcmp(what, "capture")) {
		why = g_strdup_printf("what=%.64s: not a request the balancer knows (capture)",
				      what);
		send_refused(b, c, m, job_id, why);
		g_free(why);
		goto out;
	}
	g_hash_table_iter_init(&it, b->steps);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		step_t *s = v;

		if (s->job != j ||
		    (step_id != UINT32_MAX && s->step_id != step_id))
			continue;
		if (s->cap || s->committed || !s->registered || !s->srun ||
		    !step_map_complete(s)) {
			g_string_append_printf(busy, "%s%u", busy->len ? "," : "",
					       s->step_id);
			continue;
		}
		capture_start(b, s, plan_stay("request"));
		g_string_append_printf(started, "%sStepId=%u:gen=%" PRIu64,
				       started->len ? "," : "", s->step_id,
				       s->cap->gen);
	}
	smig_info("JobId=%u capture requested by uid=%u: started %s%s%s",
		  job_id, m->uid, started->len ? started->str : "none",
		  busy->len ? ", busy steps " : "", busy->str);
	g_variant_builder_init(&vb, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(&vb, "{sv}", "job", g_variant_new_uint32(job_id));
	g_variant_builder_add(&vb, "{sv}", "status",
			      g_variant_new_int32(started->len ? 0 : -EBUSY));
	g_variant_builder_add(&vb, "{sv}", "started",
			      g_variant_new_string(started->str));
	g_variant_builder_add(&vb, "{sv}", "busy",
			      g_variant_new_string(busy->str));
	conn_send(c, SMIG_MSG_REPLY, g_variant_builder_end(&vb));
out:
	g_string_free(started, TRUE);
	g_string_free(busy, TRUE);
}

static void on_query(smig_balancer_t *b, conn_t *c, const smig_msg_t *m)
{
	GVariantBuilder vb, ns;
	uint32_t job_id, flags;
	GVariant *mv = NULL;
	GVariantIter it;
	const char *key;
	GVariant *val;
	char *why, *line;
	job_t *j;

	if (!need_u32(b, c, m, 0, "job", &job_id))
		return;
	j = g_hash_table_lookup(b->jobs, GUINT_TO_POINTER(job_id));
	if (!j) {
		send_refused(b, c, m, job_id,
			     "job not known to the balancer (no step with --migrate is running)");
		return;
	}
	if (!uid_may(b, m->uid, j->uid)) {
		why = g_strdup_printf("uid %u is not the owner (uid %u) of the job",
				      m->uid, j->uid);
		send_refused(b, c, m, job_id, why);
		g_free(why);
		return;
	}
	g_variant_builder_init(&vb, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(&vb, "{sv}", "job", g_variant_new_uint32(j->id));
	line = job_line(j);
	g_variant_builder_add(&vb, "{sv}", "state",
			      g_variant_new_take_string(line));
	g_variant_builder_add(&vb, "{sv}", "interval_ms",
			      g_variant_new_uint32(j->sample_ms));
	g_variant_builder_init(&ns, G_VARIANT_TYPE("a(ss)"));
	if (j->metrics) {
		mv = g_variant_ref_sink(smig_metrics_to_variant(j->metrics));
		g_variant_iter_init(&it, mv);
		while (g_variant_iter_next(&it, "{&sv}", &key, &val)) {
			g_variant_builder_add(&vb, "{sv}", key, val);
			g_variant_unref(val);
		}
		val = g_variant_lookup_value(mv, "nodes", NULL);
		for (gsize i = 0; val && i < g_variant_n_children(val); i++) {
			const char *node;

			g_variant_get_child(val, i, "(&sddtssad)", &node,
					    NULL, NULL, NULL, NULL, NULL,
					    NULL);
			if (!b->ops.node_flags(b->ops.ctx, node, &flags))
				continue;
			g_variant_builder_add(&ns, "(ss)", node,
					      smig_node_flags_reason(flags));
		}
		if (val)
			g_variant_unref(val);
	}
	g_variant_builder_add(&vb, "{sv}", "slurm_state",
			      g_variant_builder_end(&ns));
	conn_send(c, SMIG_MSG_STATUS, g_variant_builder_end(&vb));
	if (mv)
		g_variant_unref(mv);
}

static void handle_msg(smig_balancer_t *b, conn_t *c, const smig_msg_t *m)
{
	uint32_t job_id = 0;

	c->spoke = true;
	smig_debug2("recv %s from %s uid=%u", smig_msg_type_name(m->type),
		    c->peer, m->uid);
	switch (m->type) {
	case SMIG_MSG_HELLO_SRUN:
		on_hello_srun(b, c, m);
		break;
	case SMIG_MSG_HELLO_AGENT:
		on_hello_agent(b, c, m);
		break;
	case SMIG_MSG_COUNT:
		on_count(b, c, m);
		break;
	case SMIG_MSG_DONE:
		on_done(b, c, m);
		break;
	case SMIG_MSG_RELAUNCH_ACK:
		on_relaunch_ack(b, c, m);
		break;
	case SMIG_MSG_HANDOFF:
		on_handoff(b, c, m);
		break;
	case SMIG_MSG_REQUEST:
		on_request(b, c, m);
		break;
	case SMIG_MSG_BYE:
		on_bye(b, c, m);
		break;
	case SMIG_MSG_SAMPLE:
		on_sample(b, c, m);
		break;
	case SMIG_MSG_QUERY:
		on_query(b, c, m);
		break;
	default:
		smig_msg_get_u32(m, "job", &job_id);
		send_refused(b, c, m, job_id,
			     "not a message the balancer accepts");
		break;
	}
}

/* ---------------------------------------------------------------- conns */

static void conn_free(conn_t *c)
{
	c->b->in_total -= c->in->len;
	fd_source_free(c->src);
	close(c->fd);
	g_byte_array_unref(c->in);
	g_queue_clear_full(&c->out, (GDestroyNotify) g_bytes_unref);
	g_free(c->peer);
	g_free(c);
}

/*
 * An agent's connection was closed by its end without a BYE: its
 * slurmstepd is gone (killed, crashed), and Slurm 22.05 waits for that
 * node's tasks forever. srun ends the step (ABORT reason=agent-lost with
 * the node), so that the job can restart from its last good generation.
 */
static void step_agent_gone(step_t *s, const char *node, uint64_t gen)
{
	GVariantBuilder vb;

	smig_info("JobId=%u StepId=%u node=%s: agent gone without BYE (its slurmstepd died): %s",
		  s->job->id, s->step_id, node,
		  s->srun ? "srun ends the step" : "no srun to end the step");
	if (!s->srun)
		return;
	body_init(&vb, s);
	g_variant_builder_add(&vb, "{sv}", "gen", g_variant_new_uint64(gen));
	g_variant_builder_add(&vb, "{sv}", "reason",
			      g_variant_new_string("agent-lost"));
	g_variant_builder_add(&vb, "{sv}", "node", g_variant_new_string(node));
	conn_send(s->srun, SMIG_MSG_ABORT, g_variant_builder_end(&vb));
}

/* What a closed connection means for its step. */
static void conn_detach(smig_balancer_t *b, conn_t *c)
{
	step_t *s = c->step;
	agent_t *a = c->agent;

	if (!s)
		return;
	c->step = NULL;
	c->agent = NULL;
	if (c->role == ROLE_SRUN) {
		s->srun = NULL;
		if (s->cap)
			capture_abort(b, s, "srun-lost", NULL);
	} else if (c->role == ROLE_AGENT && a) {
		char *ranks = ranks_text(a->ranks, a->nranks);
		char *node = g_strdup(a->node);
		uint64_t gen = s->cap ? s->cap->gen : 0;

		a->conn = NULL;
		step_unindex_agent(s, a);
		g_ptr_array_remove(s->agents, a);	/* frees a */
		if (s->cap)
			capture_abort(b, s, "agent-lost", ranks);
		if (c->eof && !c->bye && !s->committed)
			step_agent_gone(s, node, gen);
		g_free(node);
		g_free(ranks);
	}
	c->role = ROLE_NONE;
	step_maybe_remove(b, s);
}

static gboolean reap_dead(gpointer data)
{
	smig_balancer_t *b = data;
	conn_t *c;

	while ((c = g_queue_pop_head(&b->dead))) {
		conn_detach(b, c);
		g_hash_table_remove(b->conns, c);	/* frees c */
	}
	g_source_unref(b->reaper);
	b->reaper = NULL;
	return G_SOURCE_REMOVE;
}

/* Close a connection soon (never in the middle of a loop over conns). */
static void conn_kill(conn_t *c, const char *why)
{
	smig_balancer_t *b = c->b;

	if (c->dead)
		return;
	if (why)
		smig_verbose("connection %s closed: %s", c->peer, why);
	c->dead = true;
	/* Stop polling it: an fd at EOF would be ready on every loop. */
	fd_source_set(c->src, 0);
	g_queue_push_tail(&b->dead, c);
	if (!b->reaper) {
		b->reaper = g_idle_source_new();
		/* As urgent as I/O, which would starve an idle priority. */
		g_source_set_priority(b->reaper, G_PRIORITY_DEFAULT);
		g_source_set_callback(b->reaper, reap_dead, b, NULL);
		g_source_attach(b->reaper, b->ctx);
	}
}

static void conn_recv(conn_t *c)
{
	smig_balancer_t *b = c->b;
	int fd = c->fd;
	guint old = c->in->len;
	ssize_t n;

	g_byte_array_set_size(c->in, old + READ_CHUNK);
	n = recv(fd, c->in->data + old, READ_CHUNK, MSG_DONTWAIT);
	if (n < 0) {
		int e = errno;

		g_byte_array_set_size(c->in, old);
		if (e == EINTR || e == EAGAIN || e == EWOULDBLOCK)
			return;
		c->eof = true;
		conn_kill(c, g_strerror(e));
		return;
	}
	g_byte_array_set_size(c->in, old + n);
	if (n == 0) {
		c->eof = true;
		conn_kill(c, c->role == ROLE_NONE ? "closed by peer" : NULL);
		return;
	}

	while (!c->dead && c->in->len) {
		GError *err = NULL;
		size_t used = 0;
		smig_msg_t *m;

		m = smig_wire_decode(b->auth, c->in->data, c->in->len, &used,
				     &err);
		if (!m && !err)
			break;
		if (!m) {
			smig_error("connection %s (JobId=%u): bad message: %s",
				   c->peer, c->step ? c->step->job->id : 0,
				   err->message);
			g_error_free(err);
			conn_kill(c, "bad message");
			break;
		}
		g_byte_array_remove_range(c->in, 0, used);
		handle_msg(b, c, m);
		smig_msg_free(m);
	}
}

/*
 * Read what a peer sent. Each connection may hold one incomplete frame of
 * up to SMIG_WIRE_MAX_BODY; all of them together at most MAX_IN_TOTAL, so
 * that many peers that never finish a frame cannot fill slurmctld's memory:
 * the connection that goes over is closed.
 */
static void conn_read(conn_t *c)
{
	smig_balancer_t *b = c->b;
	guint before = c->in->len;

	conn_recv(c);
	b->in_total = b->in_total - before + c->in->len;
	if (!c->dead && c->in->len && b->in_total > MAX_IN_TOTAL) {
		smig_error("connection %s (JobId=%u): %zu bytes of incomplete messages held over all connections (at most %u): closing it",
			   c->peer, c->step ? c->step->job->id : 0,
			   b->in_total, MAX_IN_TOTAL);
		conn_kill(c, "input buffers full");
	}
}

static void conn_io(void *data, GIOCondition cond)
{
	conn_t *c = data;

	if (c->dead)
		return;
	if (cond & G_IO_OUT) {
		if (!conn_flush(c)) {
			conn_kill(c, "send failed");
			return;
		}
	}
	if (cond & (G_IO_IN | G_IO_HUP | G_IO_ERR))
		conn_read(c);
}

/* "addr:port" of a socket address, caller g_free()s */
static char *address_text(const struct sockaddr *sa, socklen_t len)
{
	char host[NI_MAXHOST], serv[NI_MAXSERV];

	if (getnameinfo(sa, len, host, sizeof(host), serv, sizeof(serv),
			NI_NUMERICHOST | NI_NUMERICSERV))
		return g_strdup("?");
	return g_strdup_printf("%s:%s", host, serv);
}

static gboolean accept_resume(gpointer data)
{
	smig_balancer_t *b = data;

	g_source_unref(b->accept_pause);
	b->accept_pause = NULL;
	fd_source_set(b->listen_src, G_IO_IN);
	return G_SOURCE_REMOVE;
}

/*
 * Out of descriptors: the pending connection stays in the listen queue and
 * the listener would wake at once, forever. Stop watching it for a while.
 */
static void accept_pause(smig_balancer_t *b, int e)
{
	smig_error("accept on port %u: %s (%u connections open): not accepting for %u ms",
		   b->port, g_strerror(e), g_hash_table_size(b->conns),
		   ACCEPT_PAUSE_MS);
	fd_source_set(b->listen_src, 0);
	b->accept_pause = g_timeout_source_new(ACCEPT_PAUSE_MS);
	g_source_set_callback(b->accept_pause, accept_resume, b, NULL);
	g_source_attach(b->accept_pause, b->ctx);
}

/* RET true if a connection was taken from the listen queue */
static bool accept_one(smig_balancer_t *b)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	conn_t *c;
	int fd;

	fd = accept4(b->listen_fd, (struct sockaddr *) &ss, &len,
		     SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		int e = errno;

		if (e == EMFILE || e == ENFILE || e == ENOBUFS ||
		    e == ENOMEM)
			accept_pause(b, e);
		else if (e != EAGAIN && e != EWOULDBLOCK && e != EINTR &&
			 e != ECONNABORTED)
			smig_error("accept on port %u: %s", b->port,
				   g_strerror(e));
		return false;
	}
	if (g_hash_table_size(b->conns) >= b->max_conns) {
		smig_error("too many connections (%u): refusing a new one",
			   b->max_conns);
		close(fd);
		return true;
	}
	c = g_new0(conn_t, 1);
	c->b = b;
	c->fd = fd;
	c->peer = address_text((struct sockaddr *) &ss, len);
	c->in = g_byte_array_new();
	c->accepted = now_us();
	g_queue_init(&c->out);
	c->src = fd_source_new(b->poller, fd, conn_io, c);
	if (!c->src) {
		close(fd);
		g_byte_array_unref(c->in);
		g_free(c->peer);
		g_free(c);
		return true;
	}
	g_hash_table_add(b->conns, c);
	smig_debug("connection from %s", c->peer);
	return true;
}

/*
 * A batch of connections per wake-up: thousands of agents connect at once
 * when a big step starts, and those already in are served in between.
 */
static void listener_io(void *data, GIOCondition cond)
{
	smig_balancer_t *b = data;

	for (int i = 0; i < ACCEPT_BATCH && !b->accept_pause; i++)
		if (!accept_one(b))
			break;
}

/* ---------------------------------------------------------------- API */

/*
 * smig_balancer_new - a balancer, not yet listening
 * See smig_balancer.h. RET caller frees with smig_balancer_free()
 */
smig_balancer_t *smig_balancer_new(const smig_conf_t *conf,
				   const smig_host_ops_t *ops,
				   smig_auth_t *auth, uint32_t admin_uid)
{
	smig_balancer_t *b = g_new0(smig_balancer_t, 1);

	b->conf = conf;
	b->ops = *ops;
	b->auth = auth;
	b->admin_uid = admin_uid;
	b->listen_fd = -1;
	b->ctx = g_main_context_new();
	b->loop = g_main_loop_new(b->ctx, FALSE);
	b->conns = g_hash_table_new_full(NULL, NULL, (GDestroyNotify) conn_free,
					 NULL);
	g_queue_init(&b->dead);
	b->jobs = g_hash_table_new_full(NULL, NULL, NULL,
					(GDestroyNotify) job_free);
	b->steps = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL,
					 (GDestroyNotify) step_free);
	return b;
}

/*
 * Bind and listen on the first address of addr that works.
 * RET listening fd (non-blocking, close-on-exec), -1 with error set
 */
static int listen_on(const char *addr, uint16_t port, uint16_t *bound,
		     GError **error)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_PASSIVE,
	};
	struct addrinfo *ai, *p;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char serv[16];
	int fd = -1, e = 0, rc, one = 1;

	g_snprintf(serv, sizeof(serv), "%u", port);
	rc = getaddrinfo(addr, serv, &hints, &ai);
	if (rc) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_IO,
			    "MigrateBalancerAddr=%s MigratePort=%u: cannot resolve: %s",
			    addr, port, gai_strerror(rc));
		return -1;
	}
	for (p = ai; p; p = p->ai_next) {
		fd = socket(p->ai_family, p->ai_socktype | SOCK_NONBLOCK |
			    SOCK_CLOEXEC, p->ai_protocol);
		if (fd < 0) {
			e = errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		/*
		 * Thousands of agents connect when a big step starts: a
		 * full queue drops SYNs, retried only after 1 s, 3 s...
		 */
		if (!bind(fd, p->ai_addr, p->ai_addrlen) &&
		    !listen(fd, SOMAXCONN))
			break;
		e = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	if (fd < 0) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_IO,
			    "MigrateBalancerAddr=%s MigratePort=%u: cannot listen: %s",
			    addr, port, g_strerror(e));
		return -1;
	}
	*bound = port;
	if (!getsockname(fd, (struct sockaddr *) &ss, &len)) {
		if (ss.ss_family == AF_INET)
			*bound = ntohs(((struct sockaddr_in *) &ss)->sin_port);
		else if (ss.ss_family == AF_INET6)
			*bound = ntohs(((struct sockaddr_in6 *)
					&ss)->sin6_port);
	}
	return fd;
}

/*
 * The connection cap: the soft RLIMIT_NOFILE raised to the hard one (up to
 * what the cap can use), less SPARE_FDS for the host, at most MAX_CONNS.
 * The limit is the process's: slurmctld raises it to the hard one anyway.
 */
static uint32_t conns_from_rlimit(rlim_t *nofile)
{
	struct rlimit rl;
	rlim_t want = MAX_CONNS + SPARE_FDS;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
		int e = errno;

		smig_error("getrlimit(RLIMIT_NOFILE): %s: accepting at most %u connections",
			   g_strerror(e), MIN_CONNS);
		*nofile = 0;
		return MIN_CONNS;
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want &&
	    (rl.rlim_max == RLIM_INFINITY || rl.rlim_max > rl.rlim_cur)) {
		struct rlimit up = rl;

		up.rlim_cur = rl.rlim_max == RLIM_INFINITY ?
			      want : MIN(rl.rlim_max, want);
		if (setrlimit(RLIMIT_NOFILE, &up) == 0)
			rl = up;
		else
			smig_error("setrlimit(RLIMIT_NOFILE, %llu): %s",
				   (unsigned long long) up.rlim_cur,
				   g_strerror(errno));
	}
	*nofile = rl.rlim_cur;
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= want)
		return MAX_CONNS;
	if (rl.rlim_cur < MIN_CONNS + SPARE_FDS)
		return MIN_CONNS;
	return rl.rlim_cur - SPARE_FDS;
}

static gpointer balancer_thread(gpointer data)
{
	smig_balancer_t *b = data;

	g_main_context_push_thread_default(b->ctx);
	g_main_loop_run(b->loop);
	g_main_context_pop_thread_default(b->ctx);
	return NULL;
}

/*
 * smig_balancer_start - bind the port and start the thread
 * RET false with error set (names addr:port) if the port cannot be bound
 */
bool smig_balancer_start(smig_balancer_t *b, GError **error)
{
	GError *err = NULL;
	rlim_t nofile;

	if (b->thread) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_STATE,
			    "balancer already started");
		return false;
	}
	b->max_conns = conns_from_rlimit(&nofile);
	if (b->max_conns_set && b->max_conns_set < b->max_conns)
		b->max_conns = b->max_conns_set;
	b->listen_fd = listen_on(b->conf->balancer_addr, b->conf->port,
				 &b->port, error);
	if (b->listen_fd < 0)
		return false;
	b->poller = fd_poller_new(b->ctx, error);
	if (!b->poller)
		return false;
	b->listen_src = fd_source_new(b->poller, b->listen_fd, listener_io, b);
	if (!b->listen_src) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_IO,
			    "cannot watch the listening socket of port %u",
			    b->port);
		return false;
	}
	b->timer = g_timeout_source_new(MAX(b->conf->poll_interval_ms, 1));
	g_source_set_callback(b->timer, poll_timer, b, NULL);
	g_source_attach(b->timer, b->ctx);

	b->thread = g_thread_try_new("smig-balancer", balancer_thread, b,
				     &err);
	if (!b->thread) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_IO,
			    "cannot start the balancer thread: %s",
			    err->message);
		g_error_free(err);
		return false;
	}
	smig_info("listening on port %u, at most %u connections (RLIMIT_NOFILE=%llu)",
		  b->port, b->max_conns, (unsigned long long) nofile);
	return true;
}

/*
 * smig_balancer_set_max_conns - lower the connection cap (tests)
 * See smig_balancer.h.
 */
void smig_balancer_set_max_conns(smig_balancer_t *b, uint32_t n)
{
	b->max_conns_set = n;
}

/*
 * smig_balancer_port - the TCP port the balancer listens on (useful when
 * MigratePort was 0, in tests); 0 before smig_balancer_start()
 */
uint16_t smig_balancer_port(const smig_balancer_t *b)
{
	return b->port;
}

static gboolean quit_loop(gpointer data)
{
	g_main_loop_quit(data);
	return G_SOURCE_REMOVE;
}

/*
 * smig_balancer_free - stop and join the thread, close every connection
 * NULL is a no-op; safe after a failed or missing smig_balancer_start().
 */
void smig_balancer_free(smig_balancer_t *b)
{
	if (!b)
		return;
	if (b->thread) {
		/* Quit from inside the loop: a quit before run() is lost. */
		GSource *q = g_idle_source_new();

		g_source_set_priority(q, G_PRIORITY_HIGH);
		g_source_set_callback(q, quit_loop, b->loop, NULL);
		g_source_attach(q, b->ctx);
		g_source_unref(q);
		g_thread_join(b->thread);
	}
	g_queue_clear(&b->dead);
	if (b->reaper) {
		g_source_destroy(b->reaper);
		g_source_unref(b->reaper);
	}
	if (b->accept_pause) {
		g_source_destroy(b->accept_pause);
		g_source_unref(b->accept_pause);
	}
	/* Steps first: they point at conns only to detach them. */
	g_hash_table_destroy(b->steps);
	g_hash_table_destroy(b->jobs);
	g_hash_table_destroy(b->conns);
	fd_source_free(b->listen_src);
	if (b->listen_fd >= 0)
		close(b->listen_fd);
	fd_poller_free(b->poller);
	if (b->timer) {
		g_source_destroy(b->timer);
		g_source_unref(b->timer);
	}
	g_main_loop_unref(b->loop);
	g_main_context_unref(b->ctx);
	g_free(b);
}
