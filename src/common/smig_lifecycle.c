/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_lifecycle.c - what happens to a job's images when the job ends
 * (smig_lifecycle.h, doc/images.md "When a job ends")
 */
#include "smig_config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#include <glib.h>

#include "smig_error.h"
#include "smig_lifecycle.h"
#include "smig_log.h"
#include "smig_msgs.h"
#include "smig_wire.h"

/* How long the epilog waits for the balancer (it delays the node's release). */
#define FATE_TIMEOUT_MS		5000
/* A claimed directory this old (ctime) was left by a remover that died. */
#define GONE_STALE_S		3600
/* Deeper trees than this are not made by slurm-migrate: left alone. */
#define MAX_DEPTH		16

static const char *const phase_names[] = {
	[SMIG_JOB_UNKNOWN] = "unknown",
	[SMIG_JOB_ACTIVE] = "active",
	[SMIG_JOB_COMPLETED] = "completed",
	[SMIG_JOB_ENDED] = "ended",
};

/* smig_job_phase_name - see smig_lifecycle.h */
const char *smig_job_phase_name(smig_job_phase_t phase)
{
	if ((unsigned) phase >= G_N_ELEMENTS(phase_names))
		return "unknown";
	return phase_names[phase];
}

/* smig_job_phase_parse - see smig_lifecycle.h */
bool smig_job_phase_parse(const char *text, smig_job_phase_t *phase)
{
	for (unsigned i = 0; i < G_N_ELEMENTS(phase_names); i++) {
		if (!strcmp(text, phase_names[i])) {
			*phase = (smig_job_phase_t) i;
			return true;
		}
	}
	return false;
}

/* smig_fate_name - see smig_lifecycle.h */
const char *smig_fate_name(smig_fate_t fate)
{
	switch (fate) {
	case SMIG_FATE_KEEP:
		return "keep";
	case SMIG_FATE_KEEP_UNTIL:
		return "keep-until";
	default:
		return "remove";
	}
}

/* smig_image_fate - see smig_lifecycle.h */
smig_fate_t smig_image_fate(smig_job_phase_t phase, int64_t end_time,
			    uint32_t keep_s, uint32_t keep_completed_s,
			    int64_t now, int64_t *until)
{
	if (phase == SMIG_JOB_ACTIVE)
		return SMIG_FATE_KEEP;
	if (phase == SMIG_JOB_COMPLETED)
		keep_s = keep_completed_s;
	/* UNKNOWN with an end: it ended, nobody knows how; as ENDED. */
	if (phase == SMIG_JOB_UNKNOWN && end_time <= 0)
		return SMIG_FATE_KEEP;
	if (!keep_s || end_time + (int64_t) keep_s <= now)
		return SMIG_FATE_REMOVE;
	*until = end_time + (int64_t) keep_s;
	return SMIG_FATE_KEEP_UNTIL;
}

/* ------------------------------------------------------------- client */

/* smig_fate_client_init - see smig_lifecycle.h */
void smig_fate_client_init(smig_fate_client_t *c, const smig_conf_t *conf,
			   uint32_t admin_uid)
{
	c->conf = conf;
	c->admin_uid = admin_uid;
	c->auth = NULL;
	c->fd = -1;
	c->unreachable = false;
}

/* smig_fate_client_close - see smig_lifecycle.h */
void smig_fate_client_close(smig_fate_client_t *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	g_clear_pointer(&c->auth, smig_auth_free);
}

/* smig_fate_ask - see smig_lifecycle.h */
bool smig_fate_ask(smig_fate_client_t *c, uint32_t job,
		   smig_job_facts_t *facts, GError **error)
{
	smig_msg_fate_query_t q = { .job = job };
	smig_msg_refused_t r;
	smig_msg_fate_t a;
	smig_msg_t *msg, *reply = NULL;
	bool ok = false, sent;

	if (c->unreachable) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_IO,
			    "balancer at %s:%u did not answer before: not asked again",
			    c->conf->balancer_addr, c->conf->port);
		return false;
	}
	if (!c->auth &&
	    !(c->auth = smig_auth_munge_new(c->conf->munge_socket, error)))
		return false;
	if (c->fd < 0) {
		c->fd = smig_wire_connect(c->conf->balancer_addr,
					  c->conf->port, FATE_TIMEOUT_MS,
					  error);
		if (c->fd < 0) {
			c->unreachable = true;
			g_prefix_error(error, "balancer at %s:%u: ",
				       c->conf->balancer_addr, c->conf->port);
			return false;
		}
	}
	msg = smig_msg_fate_query_encode(&q);
	sent = smig_wire_send(c->fd, c->auth, msg, error);
	smig_msg_free(msg);
	if (sent)
		reply = smig_wire_recv(c->fd, c->auth, FATE_TIMEOUT_MS, error);
	if (!reply) {
		c->unreachable = true;
		goto fail;
	}
	if (reply->uid != 0 && reply->uid != c->admin_uid) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_AUTH,
			    "%s from uid %u ignored: the balancer runs as root or SlurmUser (uid %u)",
			    smig_msg_type_name(reply->type), reply->uid,
			    c->admin_uid);
		goto fail;
	}
	if (reply->type == SMIG_MSG_REFUSED) {
		if (smig_msg_refused_decode(reply, &r, error)) {
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_WIRE,
				    "the balancer refused FATE_QUERY: %s",
				    r.reason);
			smig_msg_refused_clear(&r);
		}
		/* The connection stays usable for the next job. */
		smig_msg_free(reply);
		return false;
	}
	if (reply->type != SMIG_MSG_FATE) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_WIRE,
			    "unexpected %s from the balancer",
			    smig_msg_type_name(reply->type));
		goto fail;
	}
	if (!smig_msg_fate_decode(reply, &a, error))
		goto fail;
	if (a.job != job || !smig_job_phase_parse(a.phase, &facts->phase)) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_WIRE,
			    "FATE for JobId=%u with phase %.32s: not an answer about JobId=%u",
			    a.job, a.phase, job);
		smig_msg_fate_clear(&a);
		goto fail;
	}
	g_strlcpy(facts->state, a.state, sizeof(facts->state));
	facts->end_time = a.has_end_time ? (int64_t) MIN(a.end_time,
							 (uint64_t) G_MAXINT64) : 0;
	facts->uid = UINT32_MAX;
	smig_msg_fate_clear(&a);
	ok = true;
fail:
	if (reply)
		smig_msg_free(reply);
	if (!ok && c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
	return ok;
}

/* -------------------------------------------------------------- store */

static bool job_name(const char *name, uint32_t *job)
{
	uint64_t v = 0;

	if (!*name || *name == '0' || strlen(name) > 10)
		return false;
	for (const char *p = name; *p; p++) {
		if (!g_ascii_isdigit(*p))
			return false;
		v = v * 10 + (uint64_t) (*p - '0');
	}
	if (v == 0 || v >= UINT32_MAX - 1)
		return false;
	*job = (uint32_t) v;
	return true;
}

/* smig_store_mark - see smig_lifecycle.h */
bool smig_store_mark(const char *root, uint32_t job,
		     const smig_keep_mark_t *mark, GError **error)
{
	char name[64], tmp[96], text[160];
	int root_fd, fd, n;
	bool ok = false;

	snprintf(name, sizeof(name), ".keep.%u", job);
	snprintf(tmp, sizeof(tmp), ".keep.%u.tmp.%ld", job, (long) getpid());
	n = snprintf(text, sizeof(text), "until=%" PRId64 " end=%" PRId64
		     " state=%s\n", mark->until, mark->end, mark->state);
	root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root_fd < 0) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_IO, "%s: %s", root,
			    g_strerror(errno));
		return false;
	}
	unlinkat(root_fd, tmp, 0);
	fd = openat(root_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		    O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, text, (size_t) n) != n || fsync(fd) < 0) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_IO, "%s/%s: %s",
			    root, tmp, g_strerror(errno));
		if (fd >= 0) {
			close(fd);
			unlinkat(root_fd, tmp, 0);
		}
		goto out;
	}
	close(fd);
	if (renameat(root_fd, tmp, root_fd, name) < 0) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_IO, "%s/%s: %s",
			    root, name, g_strerror(errno));
		unlinkat(root_fd, tmp, 0);
		goto out;
	}
	ok = true;
out:
	close(root_fd);
	return ok;
}

/* smig_store_read_mark - see smig_lifecycle.h */
bool smig_store_read_mark(const char *root, uint32_t job,
			  smig_keep_mark_t *mark)
{
	char *path = g_strdup_printf("%s/.keep.%u", root, job);
	char buf[160], state[64];
	struct stat st;
	long long until, end;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	g_free(path);
	if (fd < 0)
		return false;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != 0) {
		close(fd);
		return false;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	if (sscanf(buf, "until=%lld end=%lld state=%63s", &until, &end,
		   state) != 3)
		return false;
	mark->until = until;
	mark->end = end;
	g_strlcpy(mark->state, state, sizeof(mark->state));
	return true;
}

/* smig_store_unmark - see smig_lifecycle.h */
void smig_store_unmark(const char *root, uint32_t job)
{
	char *path = g_strdup_printf("%s/.keep.%u", root, job);

	unlink(path);
	g_free(path);
}

/*
 * rm_tree - remove dir_fd/name and all below it: directories are opened
 * O_NOFOLLOW | O_DIRECTORY from their parent's descriptor (a symbolic link
 * is unlinked, never followed), none on another file system than dev (a
 * mount point stays), at most MAX_DEPTH deep
 * OUT bytes - sizes of the files unlinked, added
 * RET true if name is gone
 */
static bool rm_tree(int dir_fd, const char *name, dev_t dev, unsigned depth,
		    uint64_t *bytes, GError **error)
{
	struct dirent *e;
	struct stat st;
	DIR *d;
	int fd;

	if (depth > MAX_DEPTH) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_IO,
			    "%s: more than %u levels deep: left alone", name,
			    MAX_DEPTH);
		return false;
	}
	fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_IO, "%s: %s", name,
			    g_strerror(errno));
		if (fd >= 0)
			close(fd);
		return false;
	}
	if (st.st_dev != dev) {
		close(fd);
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_IO,
			    "%s: another file system is mounted there: left alone",
			    name);
		return false;
	}
	if (!(d = fdopendir(fd))) {
		close(fd);
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_IO, "%s: %s", name,
			    g_strerror(errno));
		return false;
	}
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (fstatat(dirfd(d), e->d_name, &st,
			    AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			if (!rm_tree(dirfd(d), e->d_name, dev, depth + 1,
				     bytes, error)) {
				g_prefix_error(error, "%s/", name);
				closedir(d);
				return false;
			}
			continue;
		}
		if (unlinkat(dirfd(d), e->d_name, 0) == 0) {
			if (S_ISREG(st.st_mode))
				*bytes += (uint64_t) st.st_size;
		} else if (errno != ENOENT) {
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_IO,
				    "%s/%s: %s", name, e->d_name,
				    g_strerror(errno));
			closedir(d);
			return false;
		}
	}
	closedir(d);
	if (unlinkat(dir_fd, name, AT_REMOVEDIR) < 0 && errno != ENOENT) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_IO, "%s: %s", name,
			    g_strerror(errno));
		return false;
	}
	return true;
}

/* smig_store_remove_job - see smig_lifecycle.h */
bool smig_store_remove_job(const char *root, uint32_t job, const char *node,
			   uint64_t *bytes, GError **error)
{
	char name[16], gone[160];
	struct stat st;
	int root_fd;
	bool ok = false;

	*bytes = 0;
	snprintf(name, sizeof(name), "%u", job);
	snprintf(gone, sizeof(gone), ".gone.%u.%.64s.%ld", job,
		 node ? node : "-", (long) getpid());
	root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root_fd < 0 || fstat(root_fd, &st) < 0) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_IO, "%s: %s", root,
			    g_strerror(errno));
		if (root_fd >= 0)
			close(root_fd);
		return false;
	}
	/* The claim: of several nodes sharing the store, one renames it. */
	if (renameat(root_fd, name, root_fd, gone) < 0) {
		if (errno == ENOENT) {
			ok = true;	/* another node has it, or none */
			goto unmark;
		}
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_IO,
			    "%s/%s: cannot claim it for removal: %s", root,
			    name, g_strerror(errno));
		goto out;
	}
	if (!rm_tree(root_fd, gone, st.st_dev, 0, bytes, error)) {
		g_prefix_error(error, "%s/", root);
		goto out;
	}
	ok = true;
unmark:
	snprintf(name, sizeof(name), ".keep.%u", job);
	unlinkat(root_fd, name, 0);
out:
	close(root_fd);
	return ok;
}

/* Size of the regular files below dir_fd/name, without following links. */
static void tree_bytes(int dir_fd, const char *name, unsigned depth,
		       uint64_t *bytes)
{
	struct dirent *e;
	struct stat st;
	DIR *d;
	int fd;

	if (depth > MAX_DEPTH)
		return;
	fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
	if (fd < 0)
		return;
	if (!(d = fdopendir(fd))) {
		close(fd);
		return;
	}
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (fstatat(dirfd(d), e->d_name, &st,
			    AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISDIR(st.st_mode))
			tree_bytes(dirfd(d), e->d_name, depth + 1, bytes);
		else if (S_ISREG(st.st_mode))
			*bytes += (uint64_t) st.st_size;
	}
	closedir(d);
}

/* smig_store_job_bytes - see smig_lifecycle.h */
bool smig_store_job_bytes(const char *root, uint32_t job, uint64_t *bytes)
{
	int root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	char name[16];
	int fd;

	*bytes = 0;
	if (root_fd < 0)
		return false;
	snprintf(name, sizeof(name), "%u", job);
	fd = openat(root_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
	if (fd >= 0) {
		close(fd);
		tree_bytes(root_fd, name, 0, bytes);
	}
	close(root_fd);
	return fd >= 0;
}

static gint cmp_u32(gconstpointer a, gconstpointer b)
{
	uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;

	return x < y ? -1 : x > y;
}

/* smig_store_end_guess - see smig_lifecycle.h */
int64_t smig_store_end_guess(const char *root, uint32_t job,
			     const smig_keep_mark_t *mark)
{
	char *path;
	struct stat st;
	int64_t end = 0;

	if (mark)
		return mark->end;
	path = g_strdup_printf("%s/%u", root, job);
	if (lstat(path, &st) == 0)
		end = (int64_t) st.st_mtime;
	g_free(path);
	return end;
}

/* smig_store_jobs - see smig_lifecycle.h */
GArray *smig_store_jobs(const char *root)
{
	GArray *jobs;
	struct dirent *e;
	struct stat st;
	DIR *d = opendir(root);

	if (!d)
		return NULL;
	jobs = g_array_new(FALSE, FALSE, sizeof(uint32_t));
	while ((e = readdir(d))) {
		uint32_t job;

		if (!job_name(e->d_name, &job) ||
		    fstatat(dirfd(d), e->d_name, &st,
			    AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
			continue;
		g_array_append_val(jobs, job);
	}
	closedir(d);
	g_array_sort(jobs, cmp_u32);
	return jobs;
}

/* smig_format_time - see smig_lifecycle.h */
void smig_format_time(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t) t;
	struct tm tm;

	if (!localtime_r(&tt, &tm) ||
	    !strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm))
		snprintf(buf, len, "%" PRId64, t);
}

/*
 * tell - log what was done with a job's images here (slurmd's log on Slurm
 * 22.05, where a SPANK epilog's output goes) and in the balancer's log
 * (FATE_DONE on the connection the answer came by): Slurm 24.11 keeps an
 * epilog's output out of slurmd's log.
 */
static void G_GNUC_PRINTF(5, 6) tell(const smig_fate_client_t *c,
				     uint32_t job, const char *node,
				     bool failed, const char *fmt, ...)
{
	smig_msg_fate_done_t done = { 0 };
	smig_msg_t *msg;
	va_list ap;
	char *text;

	va_start(ap, fmt);
	text = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	if (failed)
		smig_cerror(SMIG_CTX_NODE(job, SMIG_LOG_NO_ID, node), "%s",
			    text);
	else
		smig_cinfo(SMIG_CTX_NODE(job, SMIG_LOG_NO_ID, node), "%s",
			   text);
	if (c->fd >= 0 && c->auth && !c->unreachable) {
		done.job = job;
		done.node = (char *) node;
		done.text = text;
		done.failed = failed;
		done.has_failed = failed;
		msg = smig_msg_fate_done_encode(&done);
		/* Best effort: the local line stands. */
		smig_wire_send(c->fd, c->auth, msg, NULL);
		smig_msg_free(msg);
	}
	g_free(text);
}

/*
 * apply - the policy for root/<job> once the balancer said how the job
 * stands; end is what the caller knows of an unknown job's end (0: none)
 */
static uint64_t apply(const char *root, const char *node,
		      const smig_fate_client_t *c, uint32_t job,
		      const smig_job_facts_t *f, int64_t end)
{
	int64_t now = (int64_t) time(NULL), until = 0;
	smig_keep_mark_t mark = { 0 }, old;
	smig_fate_t fate;
	GError *err = NULL;
	uint64_t bytes = 0;
	char when[32], *keep;

	if (f->phase != SMIG_JOB_UNKNOWN)
		end = f->end_time;
	fate = smig_image_fate(f->phase, end, c->conf->image_keep_s,
			       c->conf->image_keep_completed_s, now, &until);
	switch (fate) {
	case SMIG_FATE_REMOVE:
		if (!smig_store_remove_job(root, job, node, &bytes, &err)) {
			tell(c, job, node, true,
			     "job %s: images not removed: %s", f->state,
			     err->message);
			g_error_free(err);
			return bytes;
		}
		tell(c, job, node, false,
		     "job %s: images removed from %s (%" PRIu64 " bytes)",
		     f->state, root, bytes);
		return bytes;
	case SMIG_FATE_KEEP_UNTIL:
		if (smig_store_read_mark(root, job, &old) &&
		    old.until == until && !strcmp(old.state, f->state))
			return 0;
		mark.until = until;
		mark.end = end;
		g_strlcpy(mark.state, f->state, sizeof(mark.state));
		smig_format_time(until, when, sizeof(when));
		keep = smig_format_keep(f->phase == SMIG_JOB_COMPLETED ?
					c->conf->image_keep_completed_s :
					c->conf->image_keep_s);
		if (!smig_store_mark(root, job, &mark, &err)) {
			tell(c, job, node, true,
			     "job %s: images kept, but their expiry cannot be recorded: %s",
			     f->state, err->message);
			g_error_free(err);
		} else {
			tell(c, job, node, false,
			     "job %s: images kept in %s/%u until %s (%s=%s)",
			     f->state, root, job, when,
			     f->phase == SMIG_JOB_COMPLETED ?
			     "MigrateImageKeepCompleted" : "MigrateImageKeep",
			     keep);
		}
		g_free(keep);
		return 0;
	default:
		smig_store_unmark(root, job);
		tell(c, job, node, false,
		     "job %s: images kept in %s/%u (the job may run again)",
		     f->state, root, job);
		return 0;
	}
}

/* smig_store_job_end - see smig_lifecycle.h */
bool smig_store_job_end(const char *root, const char *node,
			smig_fate_client_t *c, uint32_t job)
{
	smig_job_facts_t f;
	GError *err = NULL;

	if (!smig_fate_ask(c, job, &f, &err)) {
		smig_cerror(SMIG_CTX_NODE(job, SMIG_LOG_NO_ID, node),
			    "images kept in %s/%u: cannot learn how the job ended: %s",
			    root, job, err->message);
		g_error_free(err);
		return false;
	}
	/* Slurm knows every job until well after its epilog. */
	apply(root, node, c, job, &f, (int64_t) time(NULL));
	return true;
}

/* Remove claimed directories whose remover died (ctime over an hour). */
static void sweep_gone(const char *root)
{
	int64_t now = (int64_t) time(NULL);
	GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
	struct dirent *e;
	struct stat st;
	DIR *d = opendir(root);

	if (!d)
		return;
	while ((e = readdir(d))) {
		if (g_str_has_prefix(e->d_name, ".gone.") &&
		    fstatat(dirfd(d), e->d_name, &st,
			    AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISDIR(st.st_mode) && st.st_uid != 0 &&
		    now - (int64_t) st.st_ctime > GONE_STALE_S)
			g_ptr_array_add(names, g_strdup(e->d_name));
	}
	for (guint i = 0; i < names->len; i++) {
		struct stat rs;
		uint64_t bytes = 0;
		GError *err = NULL;

		if (fstat(dirfd(d), &rs) < 0)
			break;
		if (!rm_tree(dirfd(d), names->pdata[i], rs.st_dev, 0, &bytes,
			     &err)) {
			smig_error("%s/%s: left by a removal that did not end; cannot remove it: %s",
				   root, (char *) names->pdata[i],
				   err->message);
			g_error_free(err);
		}
	}
	closedir(d);
	g_ptr_array_free(names, TRUE);
}

/* smig_store_sweep - see smig_lifecycle.h */
uint64_t smig_store_sweep(const char *root, const char *node,
			  smig_fate_client_t *c, uint32_t skip,
			  bool all_jobs, unsigned max)
{
	int64_t now = (int64_t) time(NULL);
	GArray *jobs = smig_store_jobs(root);
	uint64_t freed = 0;
	unsigned asked = 0;

	if (!jobs)
		return 0;
	for (guint i = 0; i < jobs->len && asked < max; i++) {
		uint32_t job = g_array_index(jobs, uint32_t, i);
		smig_keep_mark_t mark;
		smig_job_facts_t f;
		GError *err = NULL;
		bool marked = smig_store_read_mark(root, job, &mark);
		int64_t end = 0;

		if (job == skip || (!all_jobs && (!marked || mark.until > now)))
			continue;
		asked++;
		if (!smig_fate_ask(c, job, &f, &err)) {
			smig_cverbose(SMIG_CTX_NODE(job, SMIG_LOG_NO_ID, node),
				      "images in %s/%u stay: %s", root, job,
				      err->message);
			g_error_free(err);
			/* No balancer: no use asking about the others. */
			if (c->fd < 0)
				break;
			continue;
		}
		end = smig_store_end_guess(root, job, marked ? &mark : NULL);
		freed += apply(root, node, c, job, &f, end);
	}
	g_array_free(jobs, TRUE);
	sweep_gone(root);
	return freed;
}
