/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smigd.c - the balancer as its own daemon beside slurmctld
 *
 * Reads migrate.conf (beside slurm.conf, or -f), opens munge, starts the
 * balancer (src/common/smig_balancer.c) on its own thread with the host
 * operations of smigd_slurm.c, and runs a main loop for signals and for
 * writing the jobs' AdminComment segments. SIGHUP re-reads migrate.conf (a
 * bad file keeps the settings in use; changed settings restart the
 * balancer, which resumes from its state file as after any restart) and
 * reopens the log file; SIGTERM and SIGINT stop it. At start it sets
 * Slurm's node triggers (smigd_trigger.c) whose program is smigd itself in
 * its notifier mode, -E EVENT NODES: it sends NODE_EVENT to the balancer of
 * migrate.conf and exits. See smigd(8).
 */
#include "smig_config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <glib.h>
#include <glib-unix.h>

#include "smig_auth.h"
#include "smig_balancer.h"
#include "smig_conf.h"
#include "smig_error.h"
#include "smig_log.h"
#include "smig_msgs.h"
#include "smig_wire.h"
#include "smigd_slurm.h"
#include "smigd_trigger.h"

#define DEFAULT_PID_FILE "/run/smigd.pid"
#define DEFAULT_LOG_FILE "/var/log/slurm/smigd.log"
/* How often the jobs' AdminComment segments are written. */
#define FLUSH_INTERVAL_MS 250
/* -E: how long the notifier waits for the balancer. */
#define NOTIFY_TIMEOUT_MS 10000

typedef struct opts {
	bool foreground;	/* -D */
	bool print_conf;	/* -C */
	char *conf_file;	/* -f */
	char *log_file;		/* -L */
	char *pid_file;		/* -p */
	char *event;		/* -E: notifier mode */
	char *nodes;		/* -E: Slurm's argument */
	int verbose;		/* -v count */
} opts_t;

typedef struct daemon_state {
	opts_t *o;
	char *conf_path;	/* migrate.conf read */
	smigd_slurm_t *link;
	smig_conf_t *conf;
	smig_auth_t *auth;
	smig_balancer_t *balancer;
	GMainLoop *loop;
	char *exe;		/* smigd's path, while its triggers are set */
	int exit_code;
} daemon_t;

static GMutex log_lock;
static FILE *log_fp;		/* NULL: stderr */

/* The core's and smigd's lines: "[time] smigd: level: text", as slurmctld. */
static void log_sink(smig_log_level_t level, const char *msg)
{
	GDateTime *now = g_date_time_new_now_local();
	char *stamp = g_date_time_format(now, "%Y-%m-%dT%H:%M:%S.%f");
	FILE *fp;

	g_mutex_lock(&log_lock);
	fp = log_fp ? log_fp : stderr;
	/* %f gives microseconds: milliseconds as Slurm's logs. */
	fprintf(fp, "[%.23s] smigd: %s: %s\n", stamp, smig_log_level_word(level), msg);
	fflush(fp);
	g_mutex_unlock(&log_lock);
	g_free(stamp);
	g_date_time_unref(now);
}

/*
 * Open (or reopen, for logrotate) the log file.
 * RET false with error set if it cannot be opened; the old one stays
 */
static bool log_open(const char *path, GError **error)
{
	FILE *fp = fopen(path, "a");

	if (!fp) {
		int e = errno;

		g_set_error(error, SMIG_ERROR, SMIG_ERROR_IO,
			    "log file %s: %s", path, g_strerror(e));
		return false;
	}
	g_mutex_lock(&log_lock);
	if (log_fp)
		fclose(log_fp);
	log_fp = fp;
	g_mutex_unlock(&log_lock);
	return true;
}

static void usage(FILE *fp)
{
	fprintf(fp,
		"usage: smigd [-D] [-C] [-v...] [-f migrate.conf] [-L logfile] [-p pidfile]\n"
		"       smigd [-f migrate.conf] -E EVENT NODES  (run by Slurm's node trigger)\n"
		"  -D          run in the foreground, log to stderr (or to -L FILE)\n"
		"  -C          print the effective migrate.conf settings and exit\n"
		"  -f FILE     migrate.conf to read (default: beside slurm.conf)\n"
		"  -L FILE     log file (default in daemon mode " DEFAULT_LOG_FILE ")\n"
		"  -p FILE     pid file (default " DEFAULT_PID_FILE "; with -D only if given)\n"
		"  -v          more detail in the log (repeat: verbose, debug, debug2)\n"
		"  -E EVENT    tell the balancer that Slurm's node trigger EVENT fired on NODES\n"
		"  -V          print the version and exit\n");
}

/* Settings as read and completed; NULL with error set on a bad file. */
static smig_conf_t *conf_read(daemon_t *d, GError **error)
{
	smig_conf_t *conf;

	conf = smig_conf_load(d->conf_path, smigd_slurm_conf_path(d->link),
			      error);
	if (conf && !smig_conf_default_state_dir(
			conf, smigd_slurm_state_save(d->link), error))
		g_clear_pointer(&conf, smig_conf_free);
	return conf;
}

static bool conf_equal(const smig_conf_t *a, const smig_conf_t *b)
{
	GArray *pa = smig_conf_pairs(a), *pb = smig_conf_pairs(b);
	bool same = pa->len == pb->len;

	for (guint i = 0; same && i < pa->len; i++)
		same = !g_strcmp0(g_array_index(pa, smig_conf_pair_t,
						i).value,
				  g_array_index(pb, smig_conf_pair_t,
						i).value);
	smig_conf_pairs_free(pa);
	smig_conf_pairs_free(pb);
	return same;
}

/* Start munge and the balancer with d->conf. */
static bool balancer_start(daemon_t *d, GError **error)
{
	smig_host_ops_t ops;

	d->auth = smig_auth_munge_new(d->conf->munge_socket, error);
	if (!d->auth)
		return false;
	smigd_slurm_set_poll(d->link, d->conf, d->exe != NULL);
	smigd_slurm_host_ops(d->link, &ops);
	d->balancer = smig_balancer_new(d->conf, &ops, d->auth,
					smigd_slurm_admin_uid(d->link));
	if (!smig_balancer_start(d->balancer, error)) {
		g_clear_pointer(&d->balancer, smig_balancer_free);
		g_clear_pointer(&d->auth, smig_auth_free);
		return false;
	}
	smig_info("balancer listening on %s:%u, settings from %s",
		  d->conf->balancer_addr, smig_balancer_port(d->balancer),
		  d->conf_path);
	return true;
}

static void balancer_stop(daemon_t *d)
{
	g_clear_pointer(&d->balancer, smig_balancer_free);
	g_clear_pointer(&d->auth, smig_auth_free);
}

/* SIGHUP: reopen the log, re-read migrate.conf and the switch tree. */
static gboolean on_sighup(gpointer data)
{
	daemon_t *d = data;
	GError *err = NULL;
	smig_conf_t *conf, *old;

	if (log_fp && !log_open(d->o->log_file, &err)) {
		smig_error("SIGHUP: %s: logging on to the old file",
			   err->message);
		g_clear_error(&err);
	}
	smigd_slurm_topology_reload(d->link);
	conf = conf_read(d, &err);
	if (!conf) {
		smig_error("SIGHUP: %s: keeping the settings in use",
			   err->message);
		g_error_free(err);
		return G_SOURCE_CONTINUE;
	}
	if (conf_equal(conf, d->conf)) {
		smig_info("SIGHUP: %s read, settings unchanged", d->conf_path);
		smig_conf_free(conf);
		return G_SOURCE_CONTINUE;
	}
	smig_info("SIGHUP: %s read, settings changed: restarting the balancer",
		  d->conf_path);
	balancer_stop(d);
	old = d->conf;
	d->conf = conf;
	if (balancer_start(d, &err)) {
		smig_conf_free(old);
		return G_SOURCE_CONTINUE;
	}
	smig_error("SIGHUP: new settings: %s: back to the settings in use",
		   err->message);
	g_clear_error(&err);
	d->conf = old;
	smig_conf_free(conf);
	if (!balancer_start(d, &err)) {
		smig_error("%s: stopping", err->message);
		g_error_free(err);
		d->exit_code = 1;
		g_main_loop_quit(d->loop);
	}
	return G_SOURCE_CONTINUE;
}

static gboolean on_stop(gpointer data)
{
	daemon_t *d = data;

	smig_info("stopping on a signal");
	g_main_loop_quit(d->loop);
	return G_SOURCE_CONTINUE;
}

static gboolean on_flush(gpointer data)
{
	daemon_t *d = data;

	smigd_slurm_flush(d->link);
	return G_SOURCE_CONTINUE;
}

/* Write our pid; RET false with error set. */
static bool pid_file_write(const char *path, GError **error)
{
	char *text = g_strdup_printf("%ld\n", (long) getpid());
	bool ok = g_file_set_contents(path, text, -1, error);

	g_free(text);
	return ok;
}

/* -C: the settings smigd would run with, one "Key = Value" a line. */
static int print_conf(daemon_t *d)
{
	GError *err = NULL;
	const char *slurm_conf;
	GArray *pairs;

	d->link = smigd_slurm_new(&err);
	if (!d->link) {
		fprintf(stderr, "smigd: %s (MigrateStateDir's default is not resolved)\n",
			err->message);
		g_clear_error(&err);
	}
	slurm_conf = d->link ? smigd_slurm_conf_path(d->link) :
		     g_getenv("SLURM_CONF");
	if (!slurm_conf)
		slurm_conf = "/etc/slurm/slurm.conf";
	if (!d->conf_path)
		d->conf_path = smig_conf_path_beside(slurm_conf);
	d->conf = smig_conf_load(d->conf_path, slurm_conf, &err);
	if (!d->conf) {
		fprintf(stderr, "smigd: %s\n", err->message);
		g_error_free(err);
		return 1;
	}
	if (d->link && !d->conf->state_dir)
		d->conf->state_dir = g_build_filename(
			smigd_slurm_state_save(d->link) ?
			smigd_slurm_state_save(d->link) : "/", "migrate", NULL);
	printf("# %s\n", d->conf_path);
	pairs = smig_conf_pairs(d->conf);
	for (guint i = 0; i < pairs->len; i++) {
		smig_conf_pair_t *kv = &g_array_index(pairs, smig_conf_pair_t,
						      i);

		printf("%-22s = %s\n", kv->key, kv->value);
	}
	smig_conf_pairs_free(pairs);
	return 0;
}

/*
 * -E EVENT NODES: Slurm's node trigger fired (slurmctld runs this as the
 * uid that set it, smigd's): NODE_EVENT to the balancer of migrate.conf (-f,
 * else beside $SLURM_CONF), whose smigd reads the node table again.
 * slurm.conf (for MigrateBalancerAddr's default) is $SLURM_CONF, else the
 * one beside migrate.conf. RET exit code: 0 when the balancer took it
 */
static int notify(const opts_t *o)
{
	smig_msg_node_event_t ev = { .event = o->event, .nodes = o->nodes };
	const char *env = g_getenv("SLURM_CONF");
	char *slurm_conf, *path, *dir;
	smig_conf_t *conf = NULL;
	smig_auth_t *auth = NULL;
	smig_msg_t *msg, *reply = NULL;
	smig_msg_refused_t r;
	GError *err = NULL;
	int fd = -1, rc = 1;

	/*
	 * slurmctld runs triggers with every descriptor closed: keep 0-2
	 * taken, so that no socket of ours becomes stderr.
	 */
	for (int n = 0; n < 3; n++)
		if (fcntl(n, F_GETFD) < 0 && open("/dev/null", O_RDWR) < 0)
			return 1;
	if (!smigd_trigger_event_known(o->event)) {
		fprintf(stderr, "smigd: -E %s: not a node event smigd registers\n",
			o->event);
		return 2;
	}
	path = o->conf_file ? g_strdup(o->conf_file) :
	       smig_conf_path_beside(env && *env ? env : NULL);
	dir = g_path_get_dirname(path);
	slurm_conf = env && *env ? g_strdup(env) :
		     g_build_filename(dir, "slurm.conf", NULL);
	g_free(dir);
	conf = smig_conf_load(path, slurm_conf, &err);
	if (!conf)
		goto out;
	auth = smig_auth_munge_new(conf->munge_socket, &err);
	if (!auth)
		goto out;
	fd = smig_wire_connect(conf->balancer_addr, conf->port,
			       NOTIFY_TIMEOUT_MS, &err);
	if (fd < 0) {
		g_prefix_error(&err, "balancer at %s:%u: ",
			       conf->balancer_addr, conf->port);
		goto out;
	}
	msg = smig_msg_node_event_encode(&ev);
	if (!smig_wire_send(fd, auth, msg, &err)) {
		smig_msg_free(msg);
		goto out;
	}
	smig_msg_free(msg);
	reply = smig_wire_recv(fd, auth, NOTIFY_TIMEOUT_MS, &err);
	if (!reply)
		goto out;
	if (reply->type == SMIG_MSG_NODE_EVENT_OK) {
		rc = 0;
	} else if (reply->type == SMIG_MSG_REFUSED &&
		   smig_msg_refused_decode(reply, &r, &err)) {
		g_set_error(&err, SMIG_ERROR, SMIG_ERROR_WIRE,
			    "the balancer refused %s: %s", r.what, r.reason);
		smig_msg_refused_clear(&r);
	} else if (!err) {
		g_set_error(&err, SMIG_ERROR, SMIG_ERROR_WIRE,
			    "unexpected %s from the balancer",
			    smig_msg_type_name(reply->type));
	}
out:
	if (err) {
		fprintf(stderr, "smigd: -E %s %s: %s\n", o->event, o->nodes,
			err->message);
		g_error_free(err);
	}
	if (reply)
		smig_msg_free(reply);
	if (fd >= 0)
		close(fd);
	smig_auth_free(auth);
	smig_conf_free(conf);
	g_free(slurm_conf);
	g_free(path);
	return rc;
}

/*
 * Set Slurm's node triggers (smigd_trigger.c) so that node events reach
 * the balancer at once; the node table is then read every
 * SMIGD_NODE_SAFETY_POLLS MigratePollIntervals. If Slurm refuses, say so
 * and poll every MigratePollInterval as before.
 */
static void triggers_start(daemon_t *d)
{
	char *exe = g_file_read_link("/proc/self/exe", NULL);
	char *conf = g_canonicalize_filename(d->conf_path, NULL);
	GError *err = NULL;

	if (!exe)
		g_set_error(&err, SMIG_ERROR, SMIG_ERROR_IO,
			    "/proc/self/exe: smigd does not know its own path");
	if (exe && smigd_trigger_register(exe, conf, &err)) {
		d->exe = exe;
		exe = NULL;
	} else {
		smig_error("%s: NO node events from Slurm: smigd polls the node table every MigratePollInterval instead (see smigd(8), NODE EVENTS)",
			   err->message);
		g_error_free(err);
	}
	g_free(exe);
	g_free(conf);
}

static bool parse_args(int argc, char **argv, opts_t *o)
{
	int c;

	while ((c = getopt(argc, argv, "DCE:f:L:p:vVh")) != -1) {
		switch (c) {
		case 'D':
			o->foreground = true;
			break;
		case 'C':
			o->print_conf = true;
			break;
		case 'E':
			o->event = optarg;
			break;
		case 'f':
			o->conf_file = optarg;
			break;
		case 'L':
			o->log_file = optarg;
			break;
		case 'p':
			o->pid_file = optarg;
			break;
		case 'v':
			o->verbose++;
			break;
		case 'V':
			printf("smigd (slurm-migrate) %s\n", PACKAGE_VERSION);
			exit(0);
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return false;
		}
	}
	if (o->event && optind < argc)
		o->nodes = argv[optind++];
	if (o->event && !o->nodes) {
		fprintf(stderr, "smigd: -E %s: the nodes (Slurm's argument) are missing\n",
			o->event);
		usage(stderr);
		return false;
	}
	if (optind < argc) {
		fprintf(stderr, "smigd: unexpected argument '%s'\n",
			argv[optind]);
		usage(stderr);
		return false;
	}
	return true;
}

int main(int argc, char **argv)
{
	static const smig_log_level_t levels[] = {
		SMIG_LOG_INFO, SMIG_LOG_VERBOSE, SMIG_LOG_DEBUG,
		SMIG_LOG_DEBUG2, SMIG_LOG_DEBUG3 };
	opts_t o = { 0 };
	daemon_t d = { .o = &o };
	GError *err = NULL;
	bool own_pid = false;

	if (!parse_args(argc, argv, &o))
		return 2;
	if (o.conf_file)
		d.conf_path = g_strdup(o.conf_file);
	if (o.print_conf) {
		d.exit_code = print_conf(&d);
		goto out;
	}
	if (o.event) {
		d.exit_code = notify(&o);
		goto out;
	}
	if (!o.foreground && !o.pid_file)
		o.pid_file = DEFAULT_PID_FILE;
	/* -D logs to stderr, unless -L names a file. */
	if (o.foreground && o.log_file && !log_open(o.log_file, &err)) {
		fprintf(stderr, "smigd: %s\n", err->message);
		return 1;
	}
	if (!o.log_file)
		o.log_file = DEFAULT_LOG_FILE;
	smig_log_set_sink(log_sink, levels[MIN(o.verbose, 4)]);

	/* Errors up to here reach the admin's terminal. */
	d.link = smigd_slurm_new(&err);
	if (!d.link)
		goto fail;
	if (!d.conf_path)
		d.conf_path = smig_conf_path_beside(
			smigd_slurm_conf_path(d.link));
	d.conf = conf_read(&d, &err);
	if (!d.conf)
		goto fail;
	if (!o.foreground) {
		if (!log_open(o.log_file, &err))
			goto fail;
		/* Before any thread: fork() keeps only the caller's. */
		if (daemon(0, 0) < 0) {
			int e = errno;

			g_set_error(&err, SMIG_ERROR, SMIG_ERROR_IO,
				    "cannot become a daemon: %s",
				    g_strerror(e));
			goto fail;
		}
	}
	if (o.pid_file) {
		if (!pid_file_write(o.pid_file, &err))
			goto fail;
		own_pid = true;
	}
	smig_info("smigd %s started, pid %ld", PACKAGE_VERSION,
		  (long) getpid());
	/* Logged where the admin looks (not read for -C). */
	smigd_slurm_topology_reload(d.link);

	d.loop = g_main_loop_new(NULL, FALSE);
	g_unix_signal_add(SIGHUP, on_sighup, &d);
	g_unix_signal_add(SIGTERM, on_stop, &d);
	g_unix_signal_add(SIGINT, on_stop, &d);
	g_timeout_add(FLUSH_INTERVAL_MS, on_flush, &d);
	/* Before the balancer's thread: no RPC of it runs beside these. */
	triggers_start(&d);
	if (!balancer_start(&d, &err))
		goto fail;
	g_main_loop_run(d.loop);
	balancer_stop(&d);
	/* What the balancer published last still reaches the jobs. */
	smigd_slurm_flush(d.link);
	smig_info("stopped");
	goto out;

fail:
	smig_error("%s", err->message);
	g_error_free(err);
	d.exit_code = 1;
out:
	balancer_stop(&d);
	/* A clean stop: no program of ours runs on node events. */
	if (d.exe)
		smigd_trigger_clear_all(d.exe);
	if (own_pid)
		unlink(o.pid_file);
	g_clear_pointer(&d.loop, g_main_loop_unref);
	g_clear_pointer(&d.conf, smig_conf_free);
	g_clear_pointer(&d.link, smigd_slurm_free);
	g_free(d.conf_path);
	g_free(d.exe);
	return d.exit_code;
}
