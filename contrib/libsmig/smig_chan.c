/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_chan.c - libsmig without PMIx in the rank (MPICH under srun
 * --mpi=pmi2): the node agent's socket instead of PMIx events, and the
 * restore agreement through slurmstepd's PMI-1 key-value space instead of
 * PMIx_Put + fence (doc/design.md, "The agent's socket").
 *
 * The socket carries the same events and replies as PMIx, one line each,
 * "key=value" words with the PMIx keys (smig.op=capture smig.gen=3
 * smig.target=40); smig.msg, last, runs to the end of the line. The first
 * line this rank sends says which rank it is (smig.op=hello smig.rank=R);
 * the agent checks it against the peer's credentials. Lines are parsed
 * here into smig_lib_event_t and go through the one engine of
 * smig_event.c.
 *
 * Threads: a reader thread receives the agent's lines (it plays the part
 * of PMIx's progress thread: never blocks on the app, answers "count");
 * replies from any thread are serialised by st->chan_wlock. The PMI-1
 * agreement runs in the thread that calls smig_register(), after
 * MPI_Init, when MPICH no longer uses PMI_FD until MPI_Finalize.
 */
#include "smig_config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "smig_int.h"

/* Longest line from the agent (its lines are short). */
#define CHAN_LINE_MAX		1024
/* Longest PMI-1 reply we read (put_result, barrier_out, get_result). */
#define PMI_LINE_MAX		1024

static atomic_bool closing;	/* smig_chan_close(): EOF is expected */

/* env_u32 - the first of two variables that is set; RET false if neither */
static bool env_u32(const char *a, const char *b, uint32_t *out,
		    const char **name)
{
	const char *v = getenv(a);
	unsigned long n;
	char *end;

	*name = a;
	if (!v) {
		*name = b;
		v = getenv(b);
	}
	if (!v || *v < '0' || *v > '9')
		return false;
	errno = 0;
	n = strtoul(v, &end, 10);
	if (errno || *end || n > UINT32_MAX)
		return false;
	*out = n;
	return true;
}

/*
 * chan_connect - connect to the socket at path; a path too long for
 * sun_path is reached through /proc/self/fd of its directory
 * RET the socket, -errno on error
 */
static int chan_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const char *base = strrchr(path, '/');
	int fd, dfd = -1, e;
	char *dir;

	if (strlen(path) < sizeof(sa.sun_path)) {
		strcpy(sa.sun_path, path);
	} else {
		if (!base || base == path)
			return -ENAMETOOLONG;
		dir = strndup(path, base - path);
		if (!dir)
			return -ENOMEM;
		dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		e = errno;
		free(dir);
		if (dfd < 0)
			return -e;
		if (snprintf(sa.sun_path, sizeof(sa.sun_path),
			     "/proc/self/fd/%d/%s", dfd, base + 1) >=
		    (int) sizeof(sa.sun_path)) {
			close(dfd);
			return -ENAMETOOLONG;
		}
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
		e = errno;
		if (fd >= 0)
			close(fd);
		fd = -e;
	}
	if (dfd >= 0)
		close(dfd);
	return fd;
}

/* smig_chan_open - see smig_int.h */
int smig_chan_open(smig_lib_t *st)
{
	const char *path = getenv("SLURM_MIGRATE_AGENT_SOCKET"), *name;
	char line[64];
	int fd, n;

	memset(&st->me, 0, sizeof(st->me));
	snprintf(st->me.nspace, sizeof(st->me.nspace), "agent-socket");
	if (!env_u32("PMI_RANK", "SLURM_PROCID", &st->me.rank, &name)) {
		smig_log("%s=%s: not a rank (SLURM_MIGRATE_AGENT_SOCKET is set)",
			 name, getenv(name) ? getenv(name) : "(unset)");
		return SMIG_ERR_PMIX;
	}
	if (!env_u32("PMI_SIZE", "SLURM_STEP_NUM_TASKS", &st->nranks, &name) ||
	    !st->nranks || st->me.rank >= st->nranks) {
		smig_log("%s=%s: not a number of ranks above rank %u",
			 name, getenv(name) ? getenv(name) : "(unset)",
			 st->me.rank);
		return SMIG_ERR_PMIX;
	}
	if (!path || path[0] != '/') {
		smig_log("SLURM_MIGRATE_AGENT_SOCKET=%s: not an absolute path",
			 path ? path : "(unset)");
		return SMIG_ERR_PMIX;
	}
	fd = chan_connect(path);
	if (fd < 0) {
		smig_log("SLURM_MIGRATE_AGENT_SOCKET=%s: cannot connect to the node agent: %s",
			 path, strerror(-fd));
		return SMIG_ERR_PMIX;
	}
	st->chan_fd = fd;
	pthread_mutex_init(&st->chan_wlock, NULL);
	atomic_store(&closing, false);
	n = snprintf(line, sizeof(line), "smig.op=hello smig.rank=%u\n",
		     st->me.rank);
	if (smig_chan_send(st, line, n) < 0) {
		smig_log("SLURM_MIGRATE_AGENT_SOCKET=%s: %s", path,
			 strerror(errno));
		smig_chan_close(st, false);
		return SMIG_ERR_PMIX;
	}
	return SMIG_OK;
}

/* smig_chan_send - see smig_int.h */
int smig_chan_send(smig_lib_t *st, const char *line, size_t len)
{
	size_t off = 0;
	int rc = 0;

	pthread_mutex_lock(&st->chan_wlock);
	while (off < len) {
		ssize_t n = send(st->chan_fd, line + off, len - off,
				 MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : -EPIPE;
			break;
		}
		off += n;
	}
	pthread_mutex_unlock(&st->chan_wlock);
	if (rc < 0)
		errno = -rc;
	return rc;
}

/* word_u64 - a decimal value of a word; RET false if not one */
static bool word_u64(const char *v, uint64_t *out)
{
	unsigned long long n;
	char *end;

	if (*v < '0' || *v > '9')
		return false;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno || *end)
		return false;
	*out = n;
	return true;
}

/*
 * parse_line - one line of the agent (modified in place) into ev
 * RET false (logged) if a value is malformed
 */
static bool parse_line(char *line, smig_lib_event_t *ev)
{
	char *save = NULL, *w;
	uint64_t v;

	memset(ev, 0, sizeof(*ev));
	for (w = strtok_r(line, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
		char *val = strchr(w, '=');

		if (!val)
			continue;
		*val++ = '\0';
		if (!strcmp(w, "smig.op")) {
			ev->op = val;
			continue;
		}
		if (!strcmp(w, "smig.reason")) {
			/* Informative (smig_capture_info()): never fatal. */
			ev->reason = val;
			continue;
		}
		if (!strcmp(w, "smig.stop")) {
			if (strcmp(val, "0") && strcmp(val, "1"))
				goto bad;
			ev->stop = val[0] == '1';
			ev->has_stop = true;
			continue;
		}
		if (strcmp(w, "smig.gen") && strcmp(w, "smig.target") &&
		    strcmp(w, "smig.timeout_ms"))
			continue;	/* a key of a later version */
		if (!word_u64(val, &v))
			goto bad;
		if (!strcmp(w, "smig.gen")) {
			ev->gen = v;
			ev->has_gen = true;
		} else if (!strcmp(w, "smig.target")) {
			ev->target = v;
			ev->has_target = true;
		} else {
			if (v > UINT32_MAX)
				goto bad;
			ev->timeout_ms = v;
			ev->has_timeout = true;
		}
	}
	return true;
bad:
	smig_log("checkpoint event from the agent's socket: %s=%s is not a number (0 or 1 for smig.stop) as doc/design.md says: event ignored",
		 w, w + strlen(w) + 1);
	return false;
}

/* chan_line - one line from the agent, through the engine */
static void chan_line(smig_lib_t *st, char *line)
{
	smig_lib_event_t ev;
	uint64_t pause_at;

	if (!parse_line(line, &ev))
		return;
	pause_at = smig_lib_event_apply(st, &ev);
	/* As the PMIx handler: count answered from this thread. */
	if (pause_at)
		smig_lib_notify_agent(st, "count", ev.gen, pause_at, 0, 0,
				      NULL);
}

/* chan_main - the reader thread: lines until EOF */
static void *chan_main(void *arg)
{
	smig_lib_t *st = arg;
	char buf[CHAN_LINE_MAX];
	size_t len = 0;

	for (;;) {
		ssize_t n = read(st->chan_fd, buf + len, sizeof(buf) - len);
		char *nl;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (!atomic_load(&closing))
				smig_log("the node agent's socket: %s: no more checkpoint events reach this rank",
					 n ? strerror(errno) : "closed by the agent");
			return NULL;
		}
		len += n;
		while ((nl = memchr(buf, '\n', len))) {
			size_t used = nl - buf + 1;

			*nl = '\0';
			chan_line(st, buf);
			memmove(buf, buf + used, len - used);
			len -= used;
		}
		if (len == sizeof(buf)) {
			smig_log("the node agent's socket: a line of more than %zu bytes: dropped",
				 sizeof(buf));
			len = 0;
		}
	}
}

/* smig_chan_listen - see smig_int.h */
int smig_chan_listen(smig_lib_t *st)
{
	int rc = pthread_create(&st->chan_thread, NULL, chan_main, st);

	if (rc) {
		smig_log("cannot start the reader of the node agent's socket: %s",
			 strerror(rc));
		return SMIG_ERR_PMIX;
	}
	return SMIG_OK;
}

/* smig_chan_close - see smig_int.h */
void smig_chan_close(smig_lib_t *st, bool listening)
{
	atomic_store(&closing, true);
	shutdown(st->chan_fd, SHUT_RDWR);
	if (listening)
		pthread_join(st->chan_thread, NULL);
	close(st->chan_fd);
	st->chan_fd = -1;
	pthread_mutex_destroy(&st->chan_wlock);
}

/*
 * pmi_cmd - one PMI-1 request on PMI_FD and its one-line reply
 * IN  req  - "cmd=... \n"
 * IN  want - the reply's cmd
 * OUT resp - the reply without its newline
 * RET true if the reply is want with rc=0; false (logged) otherwise
 */
static bool pmi_cmd(int fd, const char *req, const char *want, char *resp,
		    size_t len)
{
	size_t off = 0, wl = strlen(want);
	ssize_t n;

	for (size_t sent = 0, rl = strlen(req); sent < rl; sent += n) {
		n = write(fd, req + sent, rl - sent);
		if (n < 0 && errno == EINTR)
			n = 0;
		else if (n <= 0)
			goto io_error;
	}
	/* Byte by byte: what follows the newline is not ours. */
	while (off < len - 1) {
		n = read(fd, resp + off, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			goto io_error;
		if (resp[off] == '\n')
			break;
		off++;
	}
	resp[off] = '\0';
	/* Slurm's answers carry rc=0; other PMI-1 servers' may not. */
	if (strncmp(resp, "cmd=", 4) || strncmp(resp + 4, want, wl) ||
	    (resp[4 + wl] != ' ' && resp[4 + wl] != '\0') ||
	    (strstr(resp, " rc=") && !strstr(resp, " rc=0"))) {
		smig_log("restore agreement: PMI-1 answered \"%s\" to %.*s",
			 resp, (int) strcspn(req, "\n"), req);
		return false;
	}
	return true;
io_error:
	smig_log("restore agreement: PMI_FD %d: %s", fd,
		 n < 0 ? strerror(errno) : "closed");
	return false;
}

/* smig_chan_agree - see smig_int.h */
bool smig_chan_agree(smig_lib_t *st, const char *key, uint64_t gen,
		     uint64_t mine, uint64_t *all)
{
	const char *v = getenv("PMI_FD");
	char req[PMI_LINE_MAX], resp[PMI_LINE_MAX], kvs[256];
	char *p, *end;
	long fd;

	errno = 0;
	fd = v ? strtol(v, &end, 10) : -1;
	if (!v || errno || *end || fd < 0 || fd > INT_MAX ||
	    fcntl((int) fd, F_GETFD) < 0) {
		smig_log("restore agreement of %u ranks without PMIx needs slurmstepd's PMI-1 (srun --mpi=pmi2): PMI_FD=%s is not an open descriptor",
			 st->nranks, v ? v : "(unset)");
		return false;
	}
	if (!pmi_cmd(fd, "cmd=get_my_kvsname\n", "my_kvsname", resp,
		     sizeof(resp)))
		return false;
	p = strstr(resp, "kvsname=");
	snprintf(kvs, sizeof(kvs), "%.*s", p ? (int) strcspn(p + 8, " ") : 4,
		 p ? p + 8 : "smig");
	/* One key per rank and round: "<gen>-<mask in hex>". */
	snprintf(req, sizeof(req), "cmd=put kvsname=%s key=%s.%u value=%" PRIu64 "-%" PRIx64 "\n",
		 kvs, key, st->me.rank, gen, mine);
	if (!pmi_cmd(fd, req, "put_result", resp, sizeof(resp)) ||
	    !pmi_cmd(fd, "cmd=barrier_in\n", "barrier_out", resp,
		     sizeof(resp)))
		return false;
	for (uint32_t r = 0; r < st->nranks; r++) {
		uint64_t theirs_gen;
		unsigned long long mask;

		snprintf(req, sizeof(req), "cmd=get kvsname=%s key=%s.%u\n",
			 kvs, key, r);
		if (!pmi_cmd(fd, req, "get_result", resp, sizeof(resp)))
			return false;
		p = strstr(resp, " value=");
		if (!p || sscanf(p + 7, "%" SCNu64 "-%llx", &theirs_gen,
				 &mask) != 2) {
			smig_log("restore agreement: rank %u's %s is \"%s\", not <gen>-<mask>",
				 r, key, p ? p + 7 : "");
			return false;
		}
		if (theirs_gen != gen) {
			smig_log("restore agreement: rank %u restores generation %" PRIu64 ", this rank %" PRIu64 ": SLURM_MIGRATE_RESTORE_GEN differs between ranks",
				 r, theirs_gen, gen);
			return false;
		}
		*all &= mask;
	}
	return true;
}
