/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * agent_sock.c - the node agent's socket, in slurmstepd: the transport to
 * ranks that have no PMIx (MPICH under srun --mpi=pmi2, where slurmstepd
 * runs no PMIx server). It carries the same events and replies as the
 * PMIx events of agent.c, one line each, "key=value" words with the same
 * keys (doc/design.md, "The agent's socket"); the engine
 * (src/common/smig_agent.c) does not know which transport a step uses.
 *
 * The socket is <job's image directory>/agent.<step>.<node>.sock: the
 * directory is the job user's, mode 0700, the socket mode 0600 and the
 * user's. Each connection starts with "smig.op=hello smig.rank=R"; the
 * agent takes it only from a process of the job's user (SO_PEERCRED) that
 * is rank R's task or one of its descendants, and every later line must
 * name the same rank. The tasks find the path in
 * SLURM_MIGRATE_AGENT_SOCKET (agent.c's task_init).
 *
 * Threads: agent_sock_start() and _stop() run in slurmstepd's main
 * thread; the socket's thread accepts and reads the ranks and hands their
 * answers to the agent thread (deliver); agent_sock_notify() runs in the
 * agent thread. The list of connections is shared under sk.lock.
 */
#define _GNU_SOURCE 1	/* struct ucred, accept4(), O_PATH */
#include "smig_config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib.h>

#include "agent_sock.h"
#include "smig_log.h"
#include "spank_migrate.h"

#define CTX SMIG_CTX_NODE(sk.job_id, sk.step_id, sk.node)

#define LINE_MAX_LEN	1024	/* a rank's line (done with its message) */
#define POLL_MS		250	/* the thread looks at sk.stopping */
#define MAX_CONN	1024	/* connections at once */
#define ANCESTRY_MAX	32	/* parents looked at for a task's pid */

typedef struct {
	int fd;
	uint32_t rank;		/* UINT32_MAX until its hello */
	size_t len;
	char buf[LINE_MAX_LEN];
} conn_t;

static struct {
	int listen_fd;
	int dir_fd;		/* the job's directory (O_PATH) */
	char *name;		/* of the socket in it */
	char *path;		/* for the tasks */
	uid_t uid;
	const char *node;	/* borrowed */
	uint32_t job_id, step_id;
	const uint32_t *ranks;	/* borrowed */
	uint32_t nranks;
	agent_sock_deliver_fn deliver;
	GThread *thread;
	gint stopping;		/* atomic */
	GMutex lock;
	GPtrArray *conns;	/* of conn_t, (lock) */
} sk = { .listen_fd = -1, .dir_fd = -1 };

void rank_event_free(void *p)
{
	rank_event_t *ev = p;

	g_free(ev->msg);
	g_free(ev);
}

static bool local_rank(uint32_t rank)
{
	for (uint32_t i = 0; i < sk.nranks; i++)
		if (sk.ranks[i] == rank)
			return true;
	return false;
}

/* parent_of - the parent of pid from /proc; RET 0 if unknown */
static pid_t parent_of(pid_t pid)
{
	char path[64], buf[512], *p;
	int ppid = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* "pid (comm) state ppid ...": comm may hold spaces and ")". */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 1, " %*c %d", &ppid) != 1)
		return 0;
	return ppid;
}

/* is_task_of - pid is rank's task or one of its descendants */
static bool is_task_of(pid_t pid, uint32_t rank)
{
	pid_t task = smig_sample_pid(rank);

	for (int i = 0; task > 0 && pid > 1 && i < ANCESTRY_MAX; i++) {
		if (pid == task)
			return true;
		pid = parent_of(pid);
	}
	return false;
}

/* word - the value of key in the words of a line, NULL if absent */
static const char *word(GHashTable *kv, const char *key)
{
	return g_hash_table_lookup(kv, key);
}

/* parse_u64 - a whole decimal number */
static bool parse_u64(const char *s, uint64_t *out)
{
	char *end;

	if (!s || *s < '0' || *s > '9')
		return false;
	errno = 0;
	*out = g_ascii_strtoull(s, &end, 10);
	return !errno && !*end;
}

/*
 * conn_line - one line of a connection (modified in place)
 * RET false (logged) when the connection must be closed
 */
static bool conn_line(conn_t *c, char *line)
{
	GHashTable *kv = g_hash_table_new(g_str_hash, g_str_equal);
	const char *op, *msg = NULL;
	uint64_t gen = 0, rank = UINT32_MAX, v;
	rank_event_t *ev = NULL;
	char *w, *save = NULL, *m;
	bool ok = false;

	/* smig.msg runs to the end of the line. */
	if ((m = strstr(line, " smig.msg="))) {
		*m = '\0';
		msg = m + strlen(" smig.msg=");
	}
	for (w = strtok_r(line, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
		char *eq = strchr(w, '=');

		if (eq) {
			*eq = '\0';
			g_hash_table_insert(kv, w, eq + 1);
		}
	}
	op = word(kv, "smig.op");
	if (!op || !parse_u64(word(kv, "smig.rank"), &rank) ||
	    rank > UINT32_MAX) {
		smig_cerror(CTX, "agent socket: a line without smig.op or a numeric smig.rank (rank=%s): connection closed",
			    word(kv, "smig.rank") ? word(kv, "smig.rank") :
			    "(none)");
		goto out;
	}
	if (c->rank == UINT32_MAX) {
		struct ucred cr;
		socklen_t len = sizeof(cr);

		if (strcmp(op, "hello")) {
			smig_cerror(CTX, "agent socket: smig.op=%s before hello: connection closed",
				    op);
			goto out;
		}
		if (!local_rank(rank)) {
			smig_cerror(CTX, "agent socket: hello from rank %" PRIu64 ", not a rank of this step on this node: connection closed",
				    rank);
			goto out;
		}
		if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0 ||
		    cr.uid != sk.uid || !is_task_of(cr.pid, rank)) {
			smig_cerror(CTX, "agent socket: hello as rank %" PRIu64 " from pid %d uid %d, which is not that rank's task of uid %d: connection closed",
				    rank, (int) cr.pid, (int) cr.uid,
				    (int) sk.uid);
			goto out;
		}
		c->rank = rank;
		smig_cdebug(CTX, "agent socket: rank %u connected (pid %d)",
			    c->rank, (int) cr.pid);
		ok = true;
		goto out;
	}
	if (rank != c->rank) {
		smig_cerror(CTX, "agent socket: rank %u's connection says smig.rank=%" PRIu64 ": connection closed",
			    c->rank, rank);
		goto out;
	}
	if (!parse_u64(word(kv, "smig.gen"), &gen)) {
		smig_cerror(CTX, "agent socket: rank %u: smig.op=%s without a numeric smig.gen, ignored",
			    c->rank, op);
		ok = true;
		goto out;
	}
	ev = g_new0(rank_event_t, 1);
	ev->gen = gen;
	ev->rank = c->rank;
	if (!strcmp(op, "count") &&
	    parse_u64(word(kv, "smig.pause_at"), &ev->pause_at)) {
		ok = true;
	} else if (!strcmp(op, "restored")) {
		ev->restored = true;
		ok = true;
	} else if (!strcmp(op, "done") &&
		   word(kv, "smig.status") &&
		   (v = g_ascii_strtoll(word(kv, "smig.status"), &m, 10),
		    !*m && (int64_t) v >= INT32_MIN && (int64_t) v <= 0)) {
		ev->done = true;
		ev->status = (int32_t) v;
		parse_u64(word(kv, "smig.bytes"), &ev->bytes);
		ev->msg = g_strdup(msg ? msg : "");
		ok = true;
	}
	if (!ok) {
		smig_cerror(CTX, "agent socket: rank %u: smig.op=%s: unknown, or without smig.pause_at (count) or smig.status (done, 0 or -errno), ignored",
			    c->rank, op);
		rank_event_free(ev);
		ok = true;
		goto out;
	}
	sk.deliver(ev);
out:
	g_hash_table_destroy(kv);
	return ok;
}

/* conn_read - what a connection sent; RET false when it is to be closed */
static bool conn_read(conn_t *c)
{
	ssize_t n = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
	char *nl;

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return true;
	if (n <= 0) {
		if (c->rank != UINT32_MAX)
			smig_cdebug(CTX, "agent socket: rank %u disconnected",
				    c->rank);
		return false;
	}
	c->len += n;
	while ((nl = memchr(c->buf, '\n', c->len))) {
		size_t used = nl - c->buf + 1;

		*nl = '\0';
		if (!conn_line(c, c->buf))
			return false;
		memmove(c->buf, c->buf + used, c->len - used);
		c->len -= used;
	}
	if (c->len == sizeof(c->buf)) {
		smig_cerror(CTX, "agent socket: rank %d sent a line of more than %zu bytes: connection closed",
			    c->rank == UINT32_MAX ? -1 : (int) c->rank,
			    sizeof(c->buf));
		return false;
	}
	return true;
}

static void conn_free(gpointer p)
{
	conn_t *c = p;

	close(c->fd);
	g_free(c);
}

/* conn_accept - a new connection, if it is the job user's */
static void conn_accept(void)
{
	int fd = accept4(sk.listen_fd, NULL, NULL,
			 SOCK_CLOEXEC | SOCK_NONBLOCK);
	conn_t *c;

	if (fd < 0)
		return;
	g_mutex_lock(&sk.lock);
	if (sk.conns->len >= MAX_CONN) {
		g_mutex_unlock(&sk.lock);
		smig_cerror(CTX, "agent socket: %d connections already: one refused",
			    MAX_CONN);
		close(fd);
		return;
	}
	c = g_new0(conn_t, 1);
	c->fd = fd;
	c->rank = UINT32_MAX;
	g_ptr_array_add(sk.conns, c);
	g_mutex_unlock(&sk.lock);
}

static gpointer sock_main(gpointer unused)
{
	struct pollfd *p = NULL;
	conn_t **cs = NULL;
	guint n = 0;

	while (!g_atomic_int_get(&sk.stopping)) {
		/* Only this thread adds or removes connections. */
		g_mutex_lock(&sk.lock);
		n = sk.conns->len;
		p = g_renew(struct pollfd, p, n + 1);
		cs = g_renew(conn_t *, cs, n + 1);
		for (guint i = 0; i < n; i++) {
			cs[i] = g_ptr_array_index(sk.conns, i);
			p[i] = (struct pollfd) { .fd = cs[i]->fd,
						 .events = POLLIN };
		}
		g_mutex_unlock(&sk.lock);
		p[n] = (struct pollfd) { .fd = sk.listen_fd, .events = POLLIN };
		if (poll(p, n + 1, POLL_MS) <= 0)
			continue;
		for (guint i = 0; i < n; i++) {
			if (!p[i].revents || conn_read(cs[i]))
				continue;
			g_mutex_lock(&sk.lock);
			g_ptr_array_remove_fast(sk.conns, cs[i]);
			g_mutex_unlock(&sk.lock);
		}
		if (p[n].revents)
			conn_accept();
	}
	g_free(p);
	g_free(cs);
	return NULL;
}

/*
 * sock_listen - bind and listen; a directory too deep for sun_path is
 * reached through /proc/self/fd
 * RET 0, or -errno
 */
static int sock_listen(uid_t uid, gid_t gid)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int e;

	if (strlen(sk.path) < sizeof(sa.sun_path))
		strcpy(sa.sun_path, sk.path);
	else if (snprintf(sa.sun_path, sizeof(sa.sun_path),
			  "/proc/self/fd/%d/%s", sk.dir_fd, sk.name) >=
		 (int) sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	/* An old step's socket of the same name (same step id: requeue). */
	if (unlinkat(sk.dir_fd, sk.name, 0) < 0 && errno != ENOENT)
		return -errno;
	sk.listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sk.listen_fd < 0)
		return -errno;
	if (bind(sk.listen_fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
		return -errno;
	if (fchmodat(sk.dir_fd, sk.name, 0600, 0) < 0 ||
	    fchownat(sk.dir_fd, sk.name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0 ||
	    listen(sk.listen_fd, 64) < 0) {
		e = errno;
		unlinkat(sk.dir_fd, sk.name, 0);
		return -e;
	}
	return 0;
}

bool agent_sock_start(const char *dir, const char *node, uint32_t job_id,
		      uint32_t step_id, uid_t uid, gid_t gid,
		      const uint32_t *ranks, uint32_t nranks,
		      agent_sock_deliver_fn deliver)
{
	GError *err = NULL;
	int rc;

	sk.node = node;
	sk.job_id = job_id;
	sk.step_id = step_id;
	sk.uid = uid;
	sk.ranks = ranks;
	sk.nranks = nranks;
	sk.deliver = deliver;
	g_atomic_int_set(&sk.stopping, 0);
	sk.name = g_strdup_printf("agent.%u.%s.sock", step_id, node);
	sk.path = g_strdup_printf("%s/%s", dir, sk.name);
	sk.dir_fd = open(dir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	rc = sk.dir_fd < 0 ? -errno : sock_listen(uid, gid);
	if (rc < 0) {
		smig_cerror(CTX, "agent socket %s: %s; ranks without PMIx cannot reach the agent",
			    sk.path, g_strerror(-rc));
		goto fail;
	}
	sk.conns = g_ptr_array_new_with_free_func(conn_free);
	sk.thread = g_thread_try_new("smig-sock", sock_main, NULL, &err);
	if (!sk.thread) {
		smig_cerror(CTX, "agent socket thread: %s", err->message);
		g_error_free(err);
		unlinkat(sk.dir_fd, sk.name, 0);
		goto fail;
	}
	return true;
fail:
	agent_sock_stop();
	return false;
}

const char *agent_sock_path(void)
{
	return sk.thread ? sk.path : NULL;
}

void agent_sock_notify(smig_agent_op_t op, uint64_t gen, uint64_t arg,
		       const char *reason, int stop)
{
	char line[256];
	int n, sent = 0;

	n = snprintf(line, sizeof(line), "smig.op=%s smig.gen=%" PRIu64,
		     smig_agent_op_name(op), gen);
	if (op == SMIG_AGENT_PREPARE) {
		n += snprintf(line + n, sizeof(line) - n,
			      " smig.timeout_ms=%u", (uint32_t) arg);
		/* A reason is one word of the balancer's ("drain", ...). */
		if (reason && *reason && strlen(reason) < 64 &&
		    !strpbrk(reason, " =\n"))
			n += snprintf(line + n, sizeof(line) - n,
				      " smig.reason=%s", reason);
		if (stop >= 0)
			n += snprintf(line + n, sizeof(line) - n,
				      " smig.stop=%d", stop != 0);
	}
	else if (op == SMIG_AGENT_CAPTURE)
		n += snprintf(line + n, sizeof(line) - n,
			      " smig.target=%" PRIu64, arg);
	else if (op == SMIG_AGENT_COMMIT)
		n += snprintf(line + n, sizeof(line) - n, " smig.stop=%d",
			      arg != 0);
	line[n++] = '\n';

	g_mutex_lock(&sk.lock);
	for (guint i = 0; sk.conns && i < sk.conns->len; i++) {
		conn_t *c = g_ptr_array_index(sk.conns, i);
		ssize_t w;

		if (c->rank == UINT32_MAX)
			continue;
		/* A few short lines never fill the socket's buffer; a rank
		 * that does not read loses the line (its capture times out). */
		w = send(c->fd, line, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w == n) {
			sent++;
			continue;
		}
		smig_cerror(CTX, "agent socket: smig.op=%s smig.gen=%" PRIu64 " to rank %u: %s",
			    smig_agent_op_name(op), gen, c->rank,
			    w < 0 ? g_strerror(errno) : "short write");
	}
	g_mutex_unlock(&sk.lock);
	smig_cdebug(CTX, "agent socket: smig.op=%s smig.gen=%" PRIu64 " sent to %d ranks of this node",
		    smig_agent_op_name(op), gen, sent);
}

void agent_sock_stop(void)
{
	g_atomic_int_set(&sk.stopping, 1);
	if (sk.thread) {
		g_thread_join(sk.thread);
		sk.thread = NULL;
	}
	g_clear_pointer(&sk.conns, g_ptr_array_unref);
	if (sk.listen_fd >= 0) {
		close(sk.listen_fd);
		if (sk.dir_fd >= 0)
			unlinkat(sk.dir_fd, sk.name, 0);
	}
	sk.listen_fd = -1;
	if (sk.dir_fd >= 0)
		close(sk.dir_fd);
	sk.dir_fd = -1;
	g_clear_pointer(&sk.name, g_free);
	g_clear_pointer(&sk.path, g_free);
	sk.ranks = NULL;
	sk.nranks = 0;
}
