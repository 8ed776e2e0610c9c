/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * sample.c - what the node agent measures: per rank CPU share, run-queue
 * delay, resident memory and progress; per node load, free memory and the
 * admin's health file; and the traffic counters of the PMPI layer
 *
 * The ranks publish two small files in the step's stat directory
 * <SLURM_MIGRATE_STAT_DIR> = /dev/shm/slurm-migrate.<job>.<step>.<node>
 * (created here, owned by the job's user, mode 0700, removed at the end):
 *   rank<R>.prog  libsmig: u64 count of smig_safepoint() calls (mmap'd)
 *   rank<R>.aff   libsmig_pmpi: bytes and messages sent per peer
 * Formats in doc/design.md ("Monitoring"). They are the user's files: read
 * with O_NOFOLLOW, size-checked, and a bad one is skipped with a log line.
 *
 * Threads: smig_sample_setup()/_task()/_fini() run in slurmstepd's main
 * thread, smig_sample_collect() in the agent thread; the task table is
 * shared under a mutex.
 */
/* dladdr() */
#define _GNU_SOURCE 1
#include "smig_config.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>
#include <slurm/spank.h>

#include "smig_metrics.h"
#include "smig_msgs.h"
#include "spank_migrate.h"

#define PROC_READ_MAX	8192	/* /proc/<pid>/status is ~1.5 kB */
#define MAX_THREADS	1024	/* threads of one rank summed for run delay */
#define AFF_MAGIC	0x46414d53u	/* "SMAF" little-endian */
#define AFF_VERSION	1
#define AFF_MAX_PEERS	65536	/* entries read from one rank's file */
#define MAX_PAIRS_SENT	16384	/* pairs in one SAMPLE (< 1 MiB frame) */
#define PMPI_LIB	"libsmig_pmpi.so"

typedef struct task {
	uint32_t rank;
	pid_t pid;
	bool have_prev;
	bool gone;		/* logged once */
	bool bad_file;		/* logged once */
	int64_t prev_us;	/* monotonic */
	uint64_t prev_ticks;
	uint64_t prev_delay_ns;
	uint64_t prev_progress;
	bool prev_has_progress;
} task_t;

static struct {
	GMutex lock;
	GArray *tasks;		/* of task_t, under lock */
	char *dir;		/* stat directory, NULL if none */
	int dir_fd;
	uint32_t interval_ms;
	long clk_tck;
	smig_health_t last_health;
	char *health_file;	/* MigrateHealthFile, %n = this node */
	bool health_logged;
	bool pairs_logged;
} smp = { .dir_fd = -1 };

uint32_t smig_sample_interval_ms(void)
{
	return smp.interval_ms;
}

/*
 * pmpi_path - libsmig_pmpi.so beside this plugin (a plugin directory an
 * admin filled), in <plugin dir>/../contrib/pmpi/.libs (a build tree),
 * else in the installed $(pkglibdir), <libdir>/slurm-migrate
 * RET new string, caller g_free()s; NULL if not found
 */
static char *pmpi_path(void)
{
	Dl_info info;
	char *dir, *path;

	if (dladdr((void *) pmpi_path, &info) && info.dli_fname) {
		dir = g_path_get_dirname(info.dli_fname);
		path = g_build_filename(dir, PMPI_LIB, NULL);
		if (access(path, R_OK) < 0) {
			/* A build tree: <build>/.libs/spank_migrate.so */
			g_free(path);
			path = g_build_filename(dir, "..", "contrib", "pmpi",
						".libs", PMPI_LIB, NULL);
		}
		g_free(dir);
		if (access(path, R_OK) == 0)
			return path;
		g_free(path);
	}
	path = g_build_filename(SMIG_LIBDIR, PMPI_LIB, NULL);
	if (access(path, R_OK) == 0)
		return path;
	g_free(path);
	return NULL;
}

/* LD_PRELOAD of the tasks gets the PMPI layer appended. */
static void preload_pmpi(spank_t sp)
{
	char old[4096] = "";
	char *path = pmpi_path(), *val;

	if (!path) {
		slurm_error("migrate: JobId=%u StepId=%u: affinity asked but %s is neither beside spank_migrate.so nor in %s; no traffic counts for this step",
			    smig_spank.job_id, smig_spank.step_id, PMPI_LIB,
			    SMIG_LIBDIR);
		return;
	}
	if (spank_getenv(sp, "LD_PRELOAD", old, sizeof(old)) !=
	    ESPANK_SUCCESS)
		old[0] = '\0';
	val = old[0] ? g_strdup_printf("%s:%s", old, path) : g_strdup(path);
	if (spank_setenv(sp, "LD_PRELOAD", val, 1) != ESPANK_SUCCESS)
		slurm_error("migrate: JobId=%u StepId=%u: cannot set LD_PRELOAD=%s for the tasks",
			    smig_spank.job_id, smig_spank.step_id, val);
	g_free(val);
	g_free(path);
}

void smig_sample_setup(spank_t sp, const char *node)
{
	struct stat st;
	char *dir;
	int fd;

	smp.interval_ms = smig_spank.req.interval_ms ?
			  smig_spank.req.interval_ms :
			  smig_spank.conf->sample_interval_ms;
	smp.clk_tck = sysconf(_SC_CLK_TCK);
	if (smp.clk_tck <= 0)
		smp.clk_tck = 100;
	smp.tasks = g_array_new(FALSE, TRUE, sizeof(task_t));
	/* Several slurmd on one host (as Slurm's own %n): one file each. */
	if (smig_spank.conf->health_file) {
		char **parts = g_strsplit(smig_spank.conf->health_file, "%n",
					  -1);

		smp.health_file = g_strjoinv(node, parts);
		g_strfreev(parts);
	}

	/* user_init runs with the user's euid: the directory is theirs. */
	dir = g_strdup_printf("/dev/shm/slurm-migrate.%u.%u.%s",
			      smig_spank.job_id, smig_spank.step_id, node);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		int e = errno;

		slurm_error("migrate: JobId=%u StepId=%u: %s: cannot create: %s; no progress or traffic counts for this step",
			    smig_spank.job_id, smig_spank.step_id, dir,
			    g_strerror(e));
		g_free(dir);
		return;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0 || st.st_uid != geteuid() ||
	    (st.st_mode & 077)) {
		slurm_error("migrate: JobId=%u StepId=%u: %s: not a private directory of uid %u (left by someone else?); no progress or traffic counts for this step",
			    smig_spank.job_id, smig_spank.step_id, dir,
			    (unsigned) geteuid());
		if (fd >= 0)
			close(fd);
		g_free(dir);
		return;
	}
	if (spank_setenv(sp, "SLURM_MIGRATE_STAT_DIR", dir, 1) !=
	    ESPANK_SUCCESS) {
		slurm_error("migrate: JobId=%u StepId=%u: cannot set SLURM_MIGRATE_STAT_DIR",
			    smig_spank.job_id, smig_spank.step_id);
		close(fd);
		rmdir(dir);
		g_free(dir);
		return;
	}
	smp.dir = dir;
	smp.dir_fd = fd;
	if (smig_spank.req.affinity)
		preload_pmpi(sp);
}

static bool sample_task(task_t *t, int64_t now, smig_rank_sample_t *rs);

void smig_sample_task(spank_t sp)
{
	task_t t = { 0 };
	smig_rank_sample_t unused;

	if (!smp.tasks ||
	    spank_get_item(sp, S_TASK_PID, &t.pid) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_TASK_GLOBAL_ID, &t.rank) != ESPANK_SUCCESS)
		return;
	/*
	 * The first look now, at the task's start: the agent's first SAMPLE,
	 * one interval later, then has rates (else only the second would,
	 * and a step shorter than two intervals was never sampled).
	 */
	sample_task(&t, g_get_monotonic_time(), &unused);
	g_mutex_lock(&smp.lock);
	g_array_append_val(smp.tasks, t);
	g_mutex_unlock(&smp.lock);
}

pid_t smig_sample_pid(uint32_t rank)
{
	pid_t pid = 0;

	g_mutex_lock(&smp.lock);
	for (guint i = 0; smp.tasks && i < smp.tasks->len; i++) {
		task_t *t = &g_array_index(smp.tasks, task_t, i);

		if (t->rank == rank)
			pid = t->pid;
	}
	g_mutex_unlock(&smp.lock);
	return pid;
}

/*
 * read_small - a whole small file into buf (NUL-terminated)
 * IN dirfd - directory for a relative path, or AT_FDCWD
 * RET bytes read, -errno on error
 */
static ssize_t read_small(int dirfd, const char *path, char *buf, size_t len,
			  bool user_file)
{
	int flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK;
	struct stat st;
	size_t got = 0;
	ssize_t n;
	int fd, e;

	if (user_file)
		flags |= O_NOFOLLOW;
	fd = openat(dirfd, path, flags);
	if (fd < 0)
		return -errno;
	if (user_file && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))) {
		close(fd);
		return -EINVAL;
	}
	while (got < len - 1) {
		n = read(fd, buf + got, len - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			e = errno;
			close(fd);
			return -e;
		}
		if (n == 0)
			break;
		got += n;
	}
	close(fd);
	buf[got] = '\0';
	return got;
}

/* Run delay of every thread of pid, summed. RET false if none readable */
static bool proc_delay(pid_t pid, uint64_t *delay_ns)
{
	char path[64], buf[128];
	struct dirent *de;
	uint64_t run, delay, sum = 0;
	unsigned n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int) pid);
	if (!(d = opendir(path)))
		return false;
	while ((de = readdir(d)) && n < MAX_THREADS) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%.20s/schedstat",
			 (int) pid, de->d_name);
		if (read_small(AT_FDCWD, path, buf, sizeof(buf), false) > 0 &&
		    smig_proc_parse_schedstat(buf, &run, &delay)) {
			sum += delay;
			n++;
		}
	}
	closedir(d);
	*delay_ns = sum;
	return n > 0;
}

/* The safe-point count libsmig publishes; false if the rank has none. */
static bool rank_progress(task_t *t, uint64_t *count)
{
	char name[32], buf[16];
	ssize_t n;

	if (smp.dir_fd < 0)
		return false;
	snprintf(name, sizeof(name), "rank%u.prog", t->rank);
	n = read_small(smp.dir_fd, name, buf, sizeof(buf), true);
	if (n == -ENOENT)
		return false;
	if (n != 8) {
		if (!t->bad_file)
			slurm_error("migrate: JobId=%u StepId=%u rank=%u: %s/%s: %s, progress not sampled",
				    smig_spank.job_id, smig_spank.step_id,
				    t->rank, smp.dir, name,
				    n < 0 ? g_strerror(-n) :
				    "not 8 bytes long");
		t->bad_file = true;
		return false;
	}
	memcpy(count, buf, 8);
	return true;
}

/*
 * sample_task - one rank's rates since its previous sample
 * RET true if rs is set (false: first look, or the rank is gone)
 */
static bool sample_task(task_t *t, int64_t now, smig_rank_sample_t *rs)
{
	char path[64], buf[PROC_READ_MAX];
	uint64_t ticks, delay = 0, rss = 0, prog = 0;
	bool has_prog, ok;
	double dt;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int) t->pid);
	if (t->gone)
		return false;
	if (read_small(AT_FDCWD, path, buf, sizeof(buf), false) <= 0 ||
	    !smig_proc_parse_stat(buf, &ticks)) {
		slurm_verbose("migrate: JobId=%u StepId=%u rank=%u pid=%d: %s unreadable (the rank exited?), no more samples of it",
			      smig_spank.job_id, smig_spank.step_id, t->rank,
			      (int) t->pid, path);
		t->gone = true;
		return false;
	}
	proc_delay(t->pid, &delay);
	snprintf(path, sizeof(path), "/proc/%d/status", (int) t->pid);
	if (read_small(AT_FDCWD, path, buf, sizeof(buf), false) > 0)
		smig_proc_parse_status_rss(buf, &rss);
	has_prog = rank_progress(t, &prog);

	ok = t->have_prev && now > t->prev_us && ticks >= t->prev_ticks;
	if (ok) {
		dt = (now - t->prev_us) / 1e6;
		rs->rank = t->rank;
		rs->cpu = (ticks - t->prev_ticks) / (double) smp.clk_tck / dt;
		rs->delay = delay >= t->prev_delay_ns ?
			    (delay - t->prev_delay_ns) / 1e9 / dt : 0;
		rs->rss = rss;
		rs->iters = has_prog && t->prev_has_progress &&
			    prog >= t->prev_progress ?
			    (prog - t->prev_progress) / dt : -1;
	}
	t->have_prev = true;
	t->prev_us = now;
	t->prev_ticks = ticks;
	t->prev_delay_ns = delay;
	t->prev_progress = prog;
	t->prev_has_progress = has_prog;
	return ok;
}

/*
 * sample_node - the node's load, free memory and health into the SAMPLE
 * OUT m - its reason is new, the caller frees it (smig_msg_sample_clear())
 */
static void sample_node(smig_msg_sample_t *m)
{
	char buf[PROC_READ_MAX], *reason = NULL;
	const char *hf = smp.health_file;
	smig_health_t h = SMIG_HEALTH_UNKNOWN;
	double load = 0;
	uint64_t avail = 0;
	ssize_t n;

	if (read_small(AT_FDCWD, "/proc/loadavg", buf, sizeof(buf),
		       false) > 0)
		smig_proc_parse_loadavg(buf, &load);
	if (read_small(AT_FDCWD, "/proc/meminfo", buf, sizeof(buf),
		       false) > 0)
		smig_proc_parse_meminfo(buf, &avail);
	if (hf) {
		n = read_small(AT_FDCWD, hf, buf, sizeof(buf), false);
		if (n < 0 || !smig_health_parse(buf, &h, &reason)) {
			if (!smp.health_logged)
				slurm_error("migrate: MigrateHealthFile=%s: %s; health unknown",
					    hf, n < 0 ? g_strerror(-n) :
					    "first word is not ok, warn or fail");
			smp.health_logged = true;
			h = SMIG_HEALTH_UNKNOWN;
		} else {
			smp.health_logged = false;
		}
	}
	m->load = load;
	m->has_load = true;
	m->mem_avail = avail;
	m->has_mem_avail = true;
	m->health = g_strdup(smig_health_name(h));
	m->has_health = true;
	m->reason = reason ? reason : g_strdup("");
	m->has_reason = true;
}

/*
 * add_pairs - the PMPI layer's counters of one rank:
 *   u32 magic "SMAF", u32 version 1, u32 rank, u32 n,
 *   n x { u32 peer, u32 zero, u64 bytes, u64 msgs }   (host byte order)
 * RET pairs added to the builder
 */
static unsigned add_pairs(task_t *t, GVariantBuilder *pairs, unsigned room)
{
	char name[32];
	uint32_t hdr[4];
	struct stat st;
	unsigned added = 0;
	const char *why = NULL;
	uint8_t *data = NULL;
	size_t len;
	int fd;

	snprintf(name, sizeof(name), "rank%u.aff", t->rank);
	fd = openat(smp.dir_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
		    O_CLOEXEC);
	if (fd < 0)
		return 0;	/* no PMPI layer, or nothing sent yet */
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_size < (off_t) sizeof(hdr) ||
	    st.st_size > (off_t) (sizeof(hdr) + AFF_MAX_PEERS * 24)) {
		why = "not a regular file of a valid size";
		goto out;
	}
	len = st.st_size;
	data = g_malloc(len);
	if (pread(fd, data, len, 0) != (ssize_t) len) {
		why = "short read";
		goto out;
	}
	memcpy(hdr, data, sizeof(hdr));
	if (hdr[0] != AFF_MAGIC || hdr[1] != AFF_VERSION ||
	    hdr[2] != t->rank || len != sizeof(hdr) + (size_t) hdr[3] * 24) {
		why = "bad header (magic, version, rank or count)";
		goto out;
	}
	for (uint32_t i = 0; i < hdr[3] && added < room; i++) {
		const uint8_t *e = data + sizeof(hdr) + (size_t) i * 24;
		uint32_t peer;
		uint64_t bytes, msgs;

		memcpy(&peer, e, 4);
		memcpy(&bytes, e + 8, 8);
		memcpy(&msgs, e + 16, 8);
		if (peer == t->rank)
			continue;
		g_variant_builder_add(pairs, "(uutt)", t->rank, peer,
				      (guint64) bytes, (guint64) msgs);
		added++;
	}
	if (added == room && !smp.pairs_logged) {
		slurm_verbose("migrate: JobId=%u StepId=%u: more than %u rank pairs on this node, the rest is not sent",
			      smig_spank.job_id, smig_spank.step_id,
			      MAX_PAIRS_SENT);
		smp.pairs_logged = true;
	}
out:
	if (why && !t->bad_file) {
		slurm_error("migrate: JobId=%u StepId=%u rank=%u: %s/%s: %s, traffic not sampled",
			    smig_spank.job_id, smig_spank.step_id, t->rank,
			    smp.dir, name, why);
		t->bad_file = true;
	}
	g_free(data);
	close(fd);
	return added;
}

GVariant *smig_sample_collect(void)
{
	smig_msg_sample_t m = { 0 };
	GVariantBuilder pairs;
	GArray *ranks, *cpu, *delay, *iters, *rss;
	int64_t now = g_get_monotonic_time();
	unsigned npairs = 0;
	GVariant *body = NULL;

	if (!smp.tasks)
		return NULL;
	ranks = g_array_new(FALSE, FALSE, sizeof(uint32_t));
	cpu = g_array_new(FALSE, FALSE, sizeof(double));
	delay = g_array_new(FALSE, FALSE, sizeof(double));
	iters = g_array_new(FALSE, FALSE, sizeof(double));
	rss = g_array_new(FALSE, FALSE, sizeof(guint64));
	g_variant_builder_init(&pairs, G_VARIANT_TYPE("a(uutt)"));

	g_mutex_lock(&smp.lock);
	for (guint i = 0; i < smp.tasks->len; i++) {
		task_t *t = &g_array_index(smp.tasks, task_t, i);
		smig_rank_sample_t rs;
		guint64 r;

		if (!sample_task(t, now, &rs))
			continue;
		r = rs.rss;
		g_array_append_val(ranks, rs.rank);
		g_array_append_val(cpu, rs.cpu);
		g_array_append_val(delay, rs.delay);
		g_array_append_val(iters, rs.iters);
		g_array_append_val(rss, r);
		if (smp.dir_fd >= 0 && npairs < MAX_PAIRS_SENT)
			npairs += add_pairs(t, &pairs,
					    MAX_PAIRS_SENT - npairs);
	}
	g_mutex_unlock(&smp.lock);

	if (ranks->len) {
		m.job = smig_spank.job_id;
		m.step = smig_spank.step_id;
		m.interval_ms = smp.interval_ms;
		m.has_interval_ms = true;
		sample_node(&m);
		/* The arrays stay the GArrays': moved into m, freed by clear. */
		m.n_ranks = m.n_cpu = m.n_delay = m.n_iters = m.n_rss =
			ranks->len;
		m.ranks = (uint32_t *) (void *) g_array_free(ranks, FALSE);
		m.cpu = (double *) (void *) g_array_free(cpu, FALSE);
		m.delay = (double *) (void *) g_array_free(delay, FALSE);
		m.iters = (double *) (void *) g_array_free(iters, FALSE);
		m.rss = (uint64_t *) (void *) g_array_free(rss, FALSE);
		m.pairs = g_variant_ref_sink(g_variant_builder_end(&pairs));
		m.has_pairs = true;
		body = smig_msg_sample_body(&m);
		smig_msg_sample_clear(&m);
	} else {
		g_variant_builder_clear(&pairs);
		g_array_free(ranks, TRUE);
		g_array_free(cpu, TRUE);
		g_array_free(delay, TRUE);
		g_array_free(iters, TRUE);
		g_array_free(rss, TRUE);
	}
	return body;
}

void smig_sample_fini(void)
{
	DIR *d;
	struct dirent *de;
	int fd;

	if (smp.dir_fd >= 0) {
		/* The user's directory: unlinkat() never follows a link. */
		fd = dup(smp.dir_fd);
		if (fd >= 0 && (d = fdopendir(fd))) {
			while ((de = readdir(d)))
				if (de->d_name[0] != '.' ||
				    (de->d_name[1] && strcmp(de->d_name, "..")))
					unlinkat(smp.dir_fd, de->d_name, 0);
			closedir(d);
		} else if (fd >= 0) {
			close(fd);
		}
		close(smp.dir_fd);
		smp.dir_fd = -1;
		if (rmdir(smp.dir) < 0)
			slurm_verbose("migrate: %s: cannot remove: %s",
				      smp.dir, g_strerror(errno));
	}
	g_clear_pointer(&smp.dir, g_free);
	g_clear_pointer(&smp.health_file, g_free);
	if (smp.tasks) {
		g_array_free(smp.tasks, TRUE);
		smp.tasks = NULL;
	}
}
