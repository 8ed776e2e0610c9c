/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_balancer_conn.c - the balancer's connections: listen, accept,
 * read and decode, encode and queue, close
 *
 * Connections are never closed in the middle of handling something else:
 * bal_conn_kill() marks a connection dead and an idle source reaps it
 * later, so that loops over a step's agents never see one vanish.
 */
/* accept4() */
#define _GNU_SOURCE 1
#include "smig_config.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <glib.h>

#include "smig_balancer_int.h"
#include "smig_error.h"

static void conn_update_events(bal_conn_t *c)
{
	GIOCondition cond = G_IO_IN;

	if (c->out_len)
		cond |= G_IO_OUT;
	bal_fd_set(c->src, cond);
}

/* Write what the socket takes now. RET false if the peer is gone. */
static bool conn_flush(bal_conn_t *c)
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
void bal_conn_send(bal_conn_t *c, smig_msg_type_t type, GVariant *body)
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
		bal_conn_kill(c, "peer does not read (output queue full)");
		goto out;
	}
	if (!conn_flush(c))
		bal_conn_kill(c, "send failed");
out:
	smig_msg_free(msg);
}

/*
 * bal_send_refused - log a refused message and answer REFUSED (what,
 * reason) to its sender
 * IN job_id - the job the message was for, 0: unknown
 * IN reason - why, naming the field and value (borrowed; cut at MAX_REASON)
 */
void bal_send_refused(smig_balancer_t *b, bal_conn_t *c, const smig_msg_t *msg,
		      uint32_t job_id, const char *reason)
{
	const char *what = smig_msg_type_name(msg->type);
	size_t len = strlen(reason);
	char *cut = NULL, *text = NULL;
	smig_msg_refused_t r;

	/* Reasons quote the sender's values: a long one must not flood
	 * slurmctld's log (a body may hold 1 MiB). */
	if (len > MAX_REASON) {
		cut = g_utf8_make_valid(reason, MAX_REASON);
		reason = text = g_strdup_printf("%s... (%zu bytes)", cut, len);
	}
	smig_cerror(job_id ? SMIG_CTX_JOB(job_id) : NULL,
		    "refused %s from uid=%u (%s): %s", what, msg->uid, c->peer,
		    reason);
	r = (smig_msg_refused_t) {
		.what = (char *) what,
		.reason = (char *) reason,
	};
	bal_conn_send(c, SMIG_MSG_REFUSED, smig_msg_refused_body(&r));
	g_free(text);
	g_free(cut);
}

/* Send one body to every connected agent of a step. */
void bal_send_agents(bal_step_t *s, smig_msg_type_t type, GVariant *body)
{
	g_variant_ref_sink(body);
	for (guint i = 0; i < s->agents->len; i++) {
		bal_agent_t *a = g_ptr_array_index(s->agents, i);

		if (a->conn)
			bal_conn_send(a->conn, type, body);
	}
	g_variant_unref(body);
}

/*
 * bal_decoded - the outcome of a smig_msg_<name>_decode() of m: on failure
 * the sender gets REFUSED with the error's text. bal_handle_msg() checked
 * the schema already, so only a message of another type fails here.
 * IN ok  - what decode returned
 * IN err - what decode set (freed here)
 * RET ok
 */
bool bal_decoded(smig_balancer_t *b, bal_conn_t *c, const smig_msg_t *m,
		 bool ok, GError **err)
{
	if (ok)
		return true;
	bal_send_refused(b, c, m, 0, (*err)->message);
	g_clear_error(err);
	return false;
}

/* bal_conn_free - close and free a connection (the conns table's free) */
void bal_conn_free(bal_conn_t *c)
{
	c->b->in_total -= c->in->len;
	bal_fd_free(c->src);
	close(c->fd);
	g_byte_array_unref(c->in);
	g_queue_clear_full(&c->out, (GDestroyNotify) g_bytes_unref);
	g_free(c->peer);
	g_free(c);
}

static gboolean reap_dead(gpointer data)
{
	smig_balancer_t *b = data;
	bal_conn_t *c;

	while ((c = g_queue_pop_head(&b->dead))) {
		bal_conn_detach(b, c);
		g_hash_table_remove(b->conns, c);	/* frees c */
	}
	g_source_unref(b->reaper);
	b->reaper = NULL;
	return G_SOURCE_REMOVE;
}

/* Close a connection soon (never in the middle of a loop over conns). */
void bal_conn_kill(bal_conn_t *c, const char *why)
{
	smig_balancer_t *b = c->b;

	if (c->dead)
		return;
	if (why)
		smig_verbose("connection %s closed: %s", c->peer, why);
	c->dead = true;
	/* Stop polling it: an fd at EOF would be ready on every loop. */
	bal_fd_set(c->src, 0);
	g_queue_push_tail(&b->dead, c);
	if (!b->reaper) {
		b->reaper = g_idle_source_new();
		/* As urgent as I/O, which would starve an idle priority. */
		g_source_set_priority(b->reaper, G_PRIORITY_DEFAULT);
		g_source_set_callback(b->reaper, reap_dead, b, NULL);
		g_source_attach(b->reaper, b->ctx);
	}
}

/*
 * conn_ctx - for a log line about a connection: the job, step and node it
 * is registered for, if any
 * IN  c   - the connection
 * OUT ctx - storage for the context
 * RET ctx, or NULL if c is not registered
 */
static const smig_log_ctx_t *conn_ctx(const bal_conn_t *c,
				      smig_log_ctx_t *ctx)
{
	if (!c->step)
		return NULL;
	ctx->job_id = c->step->job->id;
	ctx->step_id = c->step->step_id;
	ctx->node = c->agent ? c->agent->node : NULL;
	return ctx;
}

static void conn_recv(bal_conn_t *c)
{
	smig_balancer_t *b = c->b;
	smig_log_ctx_t ctx;
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
		bal_conn_kill(c, g_strerror(e));
		return;
	}
	g_byte_array_set_size(c->in, old + n);
	if (n == 0) {
		c->eof = true;
		bal_conn_kill(c, c->role == ROLE_NONE ? "closed by peer" : NULL);
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
			smig_cerror(conn_ctx(c, &ctx),
				    "connection %s: bad message: %s", c->peer,
				    err->message);
			g_error_free(err);
			bal_conn_kill(c, "bad message");
			break;
		}
		g_byte_array_remove_range(c->in, 0, used);
		bal_handle_msg(b, c, m);
		smig_msg_free(m);
	}
}

/*
 * Read what a peer sent. Each connection may hold one incomplete frame of
 * up to SMIG_WIRE_MAX_BODY; all of them together at most MAX_IN_TOTAL, so
 * that many peers that never finish a frame cannot fill slurmctld's memory:
 * the connection that goes over is closed.
 */
static void conn_read(bal_conn_t *c)
{
	smig_balancer_t *b = c->b;
	smig_log_ctx_t ctx;
	guint before = c->in->len;

	conn_recv(c);
	b->in_total = b->in_total - before + c->in->len;
	if (!c->dead && c->in->len && b->in_total > MAX_IN_TOTAL) {
		smig_cerror(conn_ctx(c, &ctx),
			    "connection %s: %zu bytes of incomplete messages held over all connections (at most %u): closing it",
			    c->peer, b->in_total, MAX_IN_TOTAL);
		bal_conn_kill(c, "input buffers full");
		/* Its bytes stop counting now, not when it is reaped: else
		 * every connection read before the reaper runs is over the
		 * cap too, and is closed for this one's bytes. */
		b->in_total -= c->in->len;
		g_byte_array_set_size(c->in, 0);
	}
}

static void conn_io(void *data, GIOCondition cond)
{
	bal_conn_t *c = data;

	if (c->dead)
		return;
	if (cond & G_IO_OUT) {
		if (!conn_flush(c)) {
			bal_conn_kill(c, "send failed");
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
	bal_fd_set(b->listen_src, G_IO_IN);
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
	bal_fd_set(b->listen_src, 0);
	b->accept_pause = g_timeout_source_new(ACCEPT_PAUSE_MS);
	g_source_set_callback(b->accept_pause, accept_resume, b, NULL);
	g_source_attach(b->accept_pause, b->ctx);
}

/* RET true if a connection was taken from the listen queue */
static bool accept_one(smig_balancer_t *b)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	bal_conn_t *c;
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
	c = g_new0(bal_conn_t, 1);
	c->b = b;
	c->fd = fd;
	c->peer = address_text((struct sockaddr *) &ss, len);
	c->in = g_byte_array_new();
	c->accepted = bal_now_us();
	g_queue_init(&c->out);
	c->src = bal_fd_new(b->poller, fd, conn_io, c);
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
void bal_listener_io(void *data, GIOCondition cond)
{
	smig_balancer_t *b = data;

	for (int i = 0; i < ACCEPT_BATCH && !b->accept_pause; i++)
		if (!accept_one(b))
			break;
}

/*
 * Bind and listen on the first address of addr that works.
 * RET listening fd (non-blocking, close-on-exec), -1 with error set
 */
int bal_listen_on(const char *addr, uint16_t port, uint16_t *bound,
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
uint32_t bal_conns_from_rlimit(rlim_t *nofile)
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
