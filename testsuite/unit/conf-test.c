/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * conf-test.c - migrate.conf parsing: values, defaults, every error message
 */
#include "smig_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <check.h>
#include <glib.h>
#include <glib/gstdio.h>

#include "smig_conf.h"
#include "smig_error.h"

static char *tmpdir;

static void setup(void)
{
	GError *err = NULL;

	tmpdir = g_dir_make_tmp("conf-test-XXXXXX", &err);
	ck_assert_msg(tmpdir, "g_dir_make_tmp: %s", err ? err->message : "");
}

static void teardown(void)
{
	const char *name;
	GDir *d = g_dir_open(tmpdir, 0, NULL);

	while (d && (name = g_dir_read_name(d))) {
		char *p = g_build_filename(tmpdir, name, NULL);

		g_remove(p);
		g_free(p);
	}
	if (d)
		g_dir_close(d);
	g_rmdir(tmpdir);
	g_clear_pointer(&tmpdir, g_free);
}

/* Write a file in tmpdir; RET its path, g_free() it. */
static char *write_file(const char *name, const char *text)
{
	char *path = g_build_filename(tmpdir, name, NULL);

	ck_assert(g_file_set_contents(path, text, -1, NULL));
	return path;
}

static void expect_error(const char *text, const char *msg)
{
	smig_conf_t *conf = smig_conf_new();
	GError *err = NULL;

	ck_assert(!smig_conf_parse_line(conf, "migrate.conf", 7, text, &err));
	ck_assert_ptr_nonnull(err);
	ck_assert(g_error_matches(err, SMIG_ERROR, SMIG_ERROR_CONFIG));
	ck_assert_str_eq(err->message, msg);
	g_error_free(err);
	smig_conf_free(conf);
}

static const char *pair_value(GArray *pairs, const char *key)
{
	for (guint i = 0; i < pairs->len; i++) {
		smig_conf_pair_t *p = &g_array_index(pairs, smig_conf_pair_t, i);

		if (!strcmp(p->key, key))
			return p->value;
	}
	return NULL;
}

START_TEST(test_defaults)
{
	smig_conf_t *conf = smig_conf_new();
	GArray *pairs = smig_conf_pairs(conf);
	static const char *const want[][2] = {
		{ "MigrateBalancerAddr", "localhost" },
		{ "MigratePort", "6820" },
		{ "MigratePollInterval", "10s" },
		{ "MigrateCaptureTimeout", "1m" },
		{ "MigrateRetryInterval", "5m" },
		{ "MigrateImageDir", "/var/spool/slurm-migrate" },
		{ "MigrateRetain", "2" },
		{ "MigrateMungeSocket", "(null)" },
		{ "MigrateStateDir", "(null)" },
		{ "MigrateRelaunchGrace", "30s" },
		{ "MigrateSampleInterval", "30s" },
		{ "MigrateHealthFile", "(null)" },
		{ "MigrateImageStore", "shared" },
		{ "MigrateRestoreTimeout", "2m" },
		{ "MigrateRelaunchTries", "3" },
		{ "MigrateImageKeep", "7d" },
		{ "MigrateImageKeepCompleted", "0" },
		{ "MigrateLinkBandwidth", "1G" },
		{ "MigratePartnerCopies", "no" },
	};

	ck_assert_uint_eq(pairs->len, G_N_ELEMENTS(want));
	for (guint i = 0; i < pairs->len; i++) {
		smig_conf_pair_t *p = &g_array_index(pairs, smig_conf_pair_t, i);

		ck_assert_str_eq(p->key, want[i][0]);
		ck_assert_str_eq(p->value, want[i][1]);
	}
	ck_assert_ptr_null(conf->path);
	ck_assert_uint_eq(conf->retain, 2);
	smig_conf_pairs_free(pairs);
	smig_conf_free(conf);
	smig_conf_free(NULL);
	smig_conf_pairs_free(NULL);
}
END_TEST

START_TEST(test_lines)
{
	smig_conf_t *conf = smig_conf_new();
	GError *err = NULL;
	GArray *pairs;

	ck_assert(smig_conf_parse_line(conf, "f", 1, "", &err));
	ck_assert(smig_conf_parse_line(conf, "f", 2, "   \t ", &err));
	ck_assert(smig_conf_parse_line(conf, "f", 3, "# MigratePort=1", &err));
	ck_assert(smig_conf_parse_line(conf, "f", 4, "  migrateport = 7001  # x",
				       &err));
	ck_assert(smig_conf_parse_line(conf, "f", 5, "MIGRATEPOLLINTERVAL=500ms",
				       &err));
	ck_assert(smig_conf_parse_line(conf, "f", 6, "MigrateCaptureTimeout=90",
				       &err));
	ck_assert(smig_conf_parse_line(conf, "f", 7, "MigrateRetryInterval=1h",
				       &err));
	ck_assert(smig_conf_parse_line(conf, "f", 8, "MigrateImageDir=/scratch/img",
				       &err));
	ck_assert(smig_conf_parse_line(conf, "f", 9, "MigrateRetain=5", &err));
	ck_assert(smig_conf_parse_line(conf, "f", 10,
				       "MigrateMungeSocket=/run/m/s", &err));
	ck_assert(smig_conf_parse_line(conf, "f", 11, "MigrateStateDir=/var/st",
				       &err));
	ck_assert(smig_conf_parse_line(conf, "f", 12, "MigrateRelaunchGrace=2m",
				       &err));
	ck_assert(smig_conf_parse_line(conf, "f", 13,
				       "MigrateBalancerAddr=10.0.0.1", &err));
	ck_assert(smig_conf_parse_line(conf, "f", 14,
				       "MigrateRestoreTimeout=45s", &err));
	ck_assert(smig_conf_parse_line(conf, "f", 15,
				       "MigrateRelaunchTries=5", &err));
	ck_assert(smig_conf_parse_line(conf, "f", 16,
				       "MigrateImageKeep=36h", &err));
	ck_assert_ptr_null(err);
	ck_assert_uint_eq(conf->image_keep_s, 36 * 3600);
	ck_assert(smig_conf_parse_line(conf, "f", 17,
				       "MigrateImageKeepCompleted=1h", &err));
	ck_assert_uint_eq(conf->image_keep_completed_s, 3600);
	ck_assert(smig_conf_parse_line(conf, "f", 18,
				       "MigrateLinkBandwidth=12500M", &err));
	ck_assert_uint_eq(conf->link_bw, 12500000000ull);
	ck_assert(!conf->partner_copies);
	ck_assert(smig_conf_parse_line(conf, "f", 19,
				       "MigratePartnerCopies=yes", &err));
	ck_assert(conf->partner_copies);
	ck_assert_uint_eq(conf->restore_timeout_ms, 45000);
	ck_assert_uint_eq(conf->relaunch_tries, 5);
	ck_assert_uint_eq(conf->port, 7001);
	ck_assert_uint_eq(conf->poll_interval_ms, 500);
	ck_assert_uint_eq(conf->capture_timeout_ms, 90000);
	ck_assert_uint_eq(conf->retry_interval_ms, 3600000);
	ck_assert_str_eq(conf->image_dir, "/scratch/img");
	ck_assert_uint_eq(conf->retain, 5);
	ck_assert_str_eq(conf->munge_socket, "/run/m/s");
	ck_assert_str_eq(conf->state_dir, "/var/st");
	ck_assert_uint_eq(conf->relaunch_grace_ms, 120000);
	ck_assert_str_eq(conf->balancer_addr, "10.0.0.1");

	pairs = smig_conf_pairs(conf);
	ck_assert_str_eq(pair_value(pairs, "MigrateCaptureTimeout"), "90s");
	ck_assert_str_eq(pair_value(pairs, "MigratePollInterval"), "500ms");
	ck_assert_str_eq(pair_value(pairs, "MigrateMungeSocket"), "/run/m/s");
	ck_assert_str_eq(pair_value(pairs, "MigrateLinkBandwidth"), "12500M");
	ck_assert_str_eq(pair_value(pairs, "MigratePartnerCopies"), "yes");
	smig_conf_pairs_free(pairs);
	/* Too small, too big, not a number, a binary suffix: refused. */
	{
		static const char *const bad[] = { "999", "11T", "fast",
						   "1Gi", "-1G", "" };
		smig_conf_t *fresh = smig_conf_new();

		for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
			char *line = g_strdup_printf("MigrateLinkBandwidth=%s",
						     bad[i]);
			char *want = g_strdup_printf("f:19: MigrateLinkBandwidth=%s: not a bandwidth in bytes/s (1K to 10T, suffix K, M, G or T of 1000; examples: 1G, 12500M)",
						     bad[i]);

			ck_assert(!smig_conf_parse_line(fresh, "f", 19, line,
							&err));
			ck_assert_str_eq(err->message, want);
			g_clear_error(&err);
			g_free(line);
			g_free(want);
		}
		smig_conf_free(fresh);
	}
	smig_conf_free(conf);
}
END_TEST

START_TEST(test_syntax_errors)
{
	expect_error("MigratePort", "migrate.conf:7: MigratePort: missing '=' (Key=Value)");
	expect_error("MigrateBogus=1",
		     "migrate.conf:7: MigrateBogus=1: unknown key (MigrateBalancerAddr, MigratePort, MigratePollInterval, MigrateCaptureTimeout, MigrateRetryInterval, MigrateImageDir, MigrateRetain, MigrateMungeSocket, MigrateStateDir, MigrateRelaunchGrace, MigrateSampleInterval, MigrateHealthFile, MigrateImageStore, MigrateRestoreTimeout, MigrateRelaunchTries, MigrateImageKeep, MigrateImageKeepCompleted, MigrateLinkBandwidth, MigratePartnerCopies)");
	expect_error("=5",
		     "migrate.conf:7: =5: unknown key (MigrateBalancerAddr, MigratePort, MigratePollInterval, MigrateCaptureTimeout, MigrateRetryInterval, MigrateImageDir, MigrateRetain, MigrateMungeSocket, MigrateStateDir, MigrateRelaunchGrace, MigrateSampleInterval, MigrateHealthFile, MigrateImageStore, MigrateRestoreTimeout, MigrateRelaunchTries, MigrateImageKeep, MigrateImageKeepCompleted, MigrateLinkBandwidth, MigratePartnerCopies)");
}
END_TEST

START_TEST(test_duplicate)
{
	smig_conf_t *conf = smig_conf_new();
	GError *err = NULL;

	ck_assert(smig_conf_parse_line(conf, "m.conf", 3, "MigratePort=1", &err));
	ck_assert(!smig_conf_parse_line(conf, "m.conf", 9, "migrateport=2", &err));
	ck_assert_str_eq(err->message,
			 "m.conf:9: migrateport=2: duplicate key (already set on line 3; each key may appear once)");
	ck_assert_uint_eq(conf->port, 1);
	g_error_free(err);
	smig_conf_free(conf);
}
END_TEST

START_TEST(test_value_errors)
{
	expect_error("MigratePort=0",
		     "migrate.conf:7: MigratePort=0: not a port number (1-65535)");
	expect_error("MigratePort=65536",
		     "migrate.conf:7: MigratePort=65536: not a port number (1-65535)");
	expect_error("MigratePort=12x",
		     "migrate.conf:7: MigratePort=12x: not a port number (1-65535)");
	expect_error("MigratePort=",
		     "migrate.conf:7: MigratePort=: not a port number (1-65535)");
	expect_error("MigratePollInterval=-5s",
		     "migrate.conf:7: MigratePollInterval=-5s: not a duration (examples: 30s, 5m, 1h)");
	expect_error("MigrateCaptureTimeout=0",
		     "migrate.conf:7: MigrateCaptureTimeout=0: not a duration (examples: 30s, 5m, 1h)");
	expect_error("MigrateRetryInterval=5 m",
		     "migrate.conf:7: MigrateRetryInterval=5 m: not a duration (examples: 30s, 5m, 1h)");
	expect_error("MigrateSampleInterval=often",
		     "migrate.conf:7: MigrateSampleInterval=often: not a duration (examples: 30s, 5m, 1h)");
	expect_error("MigratePartnerCopies=true",
		     "migrate.conf:7: MigratePartnerCopies=true: not yes or no");
	expect_error("MigratePartnerCopies=",
		     "migrate.conf:7: MigratePartnerCopies=: not yes or no");
	expect_error("MigrateImageStore=nfs",
		     "migrate.conf:7: MigrateImageStore=nfs: not a kind of store (shared, local)");
	expect_error("MigrateHealthFile=health",
		     "migrate.conf:7: MigrateHealthFile=health: not an absolute path (e.g. /var/spool/slurm-migrate)");
	expect_error("MigrateRelaunchGrace=2d",
		     "migrate.conf:7: MigrateRelaunchGrace=2d: not a duration (examples: 30s, 5m, 1h)");
	expect_error("MigrateRestoreTimeout=0",
		     "migrate.conf:7: MigrateRestoreTimeout=0: not a duration (examples: 30s, 5m, 1h)");
	expect_error("MigrateRelaunchTries=0",
		     "migrate.conf:7: MigrateRelaunchTries=0: not a number of tries (1-100)");
	expect_error("MigrateRelaunchTries=101",
		     "migrate.conf:7: MigrateRelaunchTries=101: not a number of tries (1-100)");
	expect_error("MigrateImageKeep=1w",
		     "migrate.conf:7: MigrateImageKeep=1w: not a keep time (0, or up to 3650d; examples: 7d, 12h, 30m)");
	expect_error("MigrateImageKeep=3651d",
		     "migrate.conf:7: MigrateImageKeep=3651d: not a keep time (0, or up to 3650d; examples: 7d, 12h, 30m)");
	expect_error("MigrateImageKeep=",
		     "migrate.conf:7: MigrateImageKeep=: not a keep time (0, or up to 3650d; examples: 7d, 12h, 30m)");
	expect_error("MigrateImageDir=var/img",
		     "migrate.conf:7: MigrateImageDir=var/img: not an absolute path (e.g. /var/spool/slurm-migrate)");
	expect_error("MigrateStateDir=",
		     "migrate.conf:7: MigrateStateDir=: not an absolute path (e.g. /var/spool/slurm-migrate)");
	expect_error("MigrateMungeSocket=munge.sock",
		     "migrate.conf:7: MigrateMungeSocket=munge.sock: not an absolute path (e.g. /run/munge/munge.socket.2)");
	expect_error("MigrateRetain=0",
		     "migrate.conf:7: MigrateRetain=0: not a count of generations (1-1000)");
	expect_error("MigrateRetain=-1",
		     "migrate.conf:7: MigrateRetain=-1: not a count of generations (1-1000)");
	expect_error("MigrateBalancerAddr=a b",
		     "migrate.conf:7: MigrateBalancerAddr=a b: not a host name or address (e.g. ctl1, 10.0.0.1)");
	expect_error("MigrateBalancerAddr=",
		     "migrate.conf:7: MigrateBalancerAddr=: not a host name or address (e.g. ctl1, 10.0.0.1)");
}
END_TEST

START_TEST(test_durations)
{
	static const struct {
		const char *text;
		uint32_t ms;
	} ok[] = {
		{ "500ms", 500 }, { "30s", 30000 }, { "30", 30000 },
		{ "5m", 300000 }, { "1h", 3600000 }, { "4294967295ms", 4294967295u },
	};
	static const char *const bad[] = {
		"", "s", "0", "0ms", "-1", "1.5s", "5d", "1 s", "4294968s", "99999999999",
	};
	uint32_t ms;
	char *s;

	for (size_t i = 0; i < G_N_ELEMENTS(ok); i++) {
		ck_assert_msg(smig_parse_duration(ok[i].text, &ms), "%s",
			      ok[i].text);
		ck_assert_uint_eq(ms, ok[i].ms);
	}
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++)
		ck_assert_msg(!smig_parse_duration(bad[i], &ms), "%s", bad[i]);
	ck_assert(!smig_parse_duration(NULL, &ms));

	s = smig_format_duration(1500);
	ck_assert_str_eq(s, "1500ms");
	g_free(s);
	s = smig_format_duration(7200000);
	ck_assert_str_eq(s, "2h");
	g_free(s);
	s = smig_format_duration(90000);
	ck_assert_str_eq(s, "90s");
	g_free(s);
}
END_TEST

START_TEST(test_keep)
{
	static const struct { const char *text; uint32_t s; const char *fmt; }
	ok[] = {
		{ "0", 0, "0" }, { "0d", 0, "0" }, { "45", 45, "45s" },
		{ "90s", 90, "90s" }, { "90m", 5400, "90m" },
		{ "36h", 129600, "36h" }, { "7d", 604800, "7d" },
		{ "3650d", 3650u * 86400u, "3650d" },
	};
	static const char *const bad[] = {
		"", "d", "-1", "1.5d", "1w", "1 d", "500ms", "3651d",
		"315360001", "99999999999",
	};
	uint32_t v;
	char *f;

	for (size_t i = 0; i < G_N_ELEMENTS(ok); i++) {
		ck_assert_msg(smig_parse_keep(ok[i].text, &v), "%s", ok[i].text);
		ck_assert_uint_eq(v, ok[i].s);
		f = smig_format_keep(v);
		ck_assert_str_eq(f, ok[i].fmt);
		g_free(f);
	}
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++)
		ck_assert_msg(!smig_parse_keep(bad[i], &v), "%s", bad[i]);
	ck_assert(!smig_parse_keep(NULL, &v));
}
END_TEST

START_TEST(test_load_file)
{
	char *path = write_file("migrate.conf",
				"# site settings\n"
				"MigratePort=7000\n"
				"\n"
				"MigrateImageDir = /srv/img   # shared\n");
	GError *err = NULL;
	smig_conf_t *conf = smig_conf_load(path, NULL, &err);

	ck_assert_ptr_nonnull(conf);
	ck_assert_str_eq(conf->path, path);
	ck_assert_uint_eq(conf->port, 7000);
	ck_assert_str_eq(conf->image_dir, "/srv/img");
	ck_assert_str_eq(conf->balancer_addr, "localhost");
	smig_conf_free(conf);
	g_free(path);
}
END_TEST

START_TEST(test_load_bad_line)
{
	char *path = write_file("migrate.conf",
				"MigratePort=7000\n"
				"# comment\n"
				"MigrateRetain=zero\n");
	char *want = g_strdup_printf("%s:3: MigrateRetain=zero: not a count of generations (1-1000)",
				     path);
	GError *err = NULL;

	ck_assert_ptr_null(smig_conf_load(path, NULL, &err));
	ck_assert_str_eq(err->message, want);
	g_error_free(err);
	g_free(want);
	g_free(path);
}
END_TEST

START_TEST(test_load_missing_and_unreadable)
{
	char *path = g_build_filename(tmpdir, "absent.conf", NULL);
	char *want;
	GError *err = NULL;
	smig_conf_t *conf = smig_conf_load(path, NULL, &err);

	/* A missing file means every default. */
	ck_assert_ptr_nonnull(conf);
	ck_assert_ptr_null(conf->path);
	ck_assert_uint_eq(conf->port, 6820);
	smig_conf_free(conf);
	g_free(path);

	/* A directory exists but cannot be read as a file. */
	ck_assert_ptr_null(smig_conf_load(tmpdir, NULL, &err));
	want = g_strdup_printf("%s: cannot read: ", tmpdir);
	ck_assert_msg(g_str_has_prefix(err->message, want), "%s", err->message);
	g_error_free(err);
	g_free(want);
}
END_TEST

START_TEST(test_load_nul_byte)
{
	char *path = g_build_filename(tmpdir, "nul.conf", NULL);
	char *want = g_strdup_printf("%s:2: line contains a NUL byte (text only)",
				     path);
	GError *err = NULL;

	ck_assert(g_file_set_contents(path, "MigratePort=1\nMigrate\0Retain=2\n",
				      31, NULL));
	ck_assert_ptr_null(smig_conf_load(path, NULL, &err));
	ck_assert_str_eq(err->message, want);
	g_error_free(err);
	g_free(want);
	g_free(path);
}
END_TEST

static char *addr_from(const char *slurm_conf_text, const char *migrate_text)
{
	char *sc = slurm_conf_text ? write_file("slurm.conf", slurm_conf_text) :
				     g_build_filename(tmpdir, "none.conf", NULL);
	char *mc = write_file("migrate.conf", migrate_text);
	GError *err = NULL;
	smig_conf_t *conf = smig_conf_load(mc, sc, &err);
	char *addr;

	ck_assert_ptr_nonnull(conf);
	addr = g_strdup(conf->balancer_addr);
	smig_conf_free(conf);
	g_free(sc);
	g_free(mc);
	return addr;
}

START_TEST(test_balancer_addr_default)
{
	static const struct {
		const char *slurm_conf;
		const char *migrate_conf;
		const char *addr;
	} cases[] = {
		{ "ClusterName=c\nSlurmctldHost=ctl1(10.1.2.3)\nSlurmctldHost=ctl2(10.1.2.4)\n",
		  "", "10.1.2.3" },
		{ "#SlurmctldHost=old\nslurmctldhost = ctl1\n", "", "ctl1" },
		{ "ControlMachine=ctlA,ctlB\n", "", "ctlA" },
		{ "ControlMachine=ctlA\nControlAddr=192.168.0.9\n", "", "192.168.0.9" },
		{ "ClusterName=c\n", "", "localhost" },
		{ NULL, "", "localhost" },
		{ "SlurmctldHost=ctl1(10.1.2.3)\n", "MigrateBalancerAddr=bal\n",
		  "bal" },
	};

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		char *addr = addr_from(cases[i].slurm_conf,
				       cases[i].migrate_conf);

		ck_assert_msg(!strcmp(addr, cases[i].addr),
			      "case %zu: %s != %s", i, addr, cases[i].addr);
		g_free(addr);
	}
}
END_TEST

START_TEST(test_path_beside)
{
	char *p = smig_conf_path_beside("/etc/slurm-test/slurm.conf");

	ck_assert_str_eq(p, "/etc/slurm-test/migrate.conf");
	g_free(p);
	p = smig_conf_path_beside(NULL);
	ck_assert_str_eq(p, "/etc/slurm/migrate.conf");
	g_free(p);
}
END_TEST

/* smig_conf_check_image_dir() on dir, set on line 3 of FILE. */
static void check_dir_error(const char *dir, uint32_t trusted,
			    const char *want_tail)
{
	smig_conf_t *conf = smig_conf_new();
	GError *err = NULL;
	char *line = g_strdup_printf("MigrateImageDir=%s", dir);
	char *want = g_strdup_printf("FILE:3: MigrateImageDir=%s: %s", dir,
				     want_tail);

	conf->path = g_strdup("FILE");
	ck_assert(smig_conf_parse_line(conf, "FILE", 3, line, &err));
	ck_assert(!smig_conf_check_image_dir(conf, trusted, &err));
	ck_assert_str_eq(err->message, want);
	g_error_free(err);
	g_free(want);
	g_free(line);
	smig_conf_free(conf);
}

/*
 * MigrateImageDir that every --migrate step would fail on, or that lets
 * users plant job directories, is refused naming file, line, key, value.
 */
START_TEST(test_image_dir_check)
{
	char *dir = g_build_filename(tmpdir, "img", NULL);
	char *file = g_build_filename(tmpdir, "file", NULL);
	char *tail, *defpath;
	smig_conf_t *conf;
	GError *err = NULL;
	uint32_t me = (uint32_t) getuid();
	struct stat st;

	check_dir_error(dir, me,
			"cannot use it: No such file or directory (create it: a directory owned by root, mode 0755)");
	ck_assert(g_file_set_contents(file, "x", 1, NULL));
	check_dir_error(file, me,
			"a regular file, not a directory (create a directory owned by root, mode 0755)");

	ck_assert_int_eq(mkdir(dir, 0755), 0);
	/* chmod() ignores the umask; mkdir() does not. */
	ck_assert_int_eq(chmod(dir, 01777), 0);
	check_dir_error(dir, me,
			"writable by every user (mode 1777): a user could plant another job's directory (chmod 0755)");
	ck_assert_int_eq(chmod(dir, 0775), 0);
	if (me == 0)
		ck_assert_int_eq(chown(dir, (uid_t) -1, 4242), 0);
	ck_assert_int_eq(stat(dir, &st), 0);
	tail = g_strdup_printf("writable by group %u (mode 0775): its members could plant another job's directory (chmod 0755)",
			       (unsigned) st.st_gid);
	check_dir_error(dir, me, tail);
	g_free(tail);
	ck_assert_int_eq(chmod(dir, 0755), 0);

	/* Owned by someone else than root or the trusted uid. */
	if (me == 0)
		ck_assert_int_eq(chown(dir, 4243, (gid_t) -1), 0);
	ck_assert_int_eq(stat(dir, &st), 0);
	tail = g_strdup_printf("owned by uid %u, not by root: its owner could plant or replace any job's directory (chown root)",
			       (unsigned) st.st_uid);
	check_dir_error(dir, me == 0 ? 0 : me + 1, tail);
	g_free(tail);

	/* The owner trusted (root or SlurmUser), mode 0755: accepted. */
	conf = smig_conf_new();
	g_free(conf->image_dir);
	conf->image_dir = g_strdup(dir);
	ck_assert_msg(smig_conf_check_image_dir(conf, st.st_uid, &err), "%s",
		      err ? err->message : "");
	smig_conf_free(conf);

	/* The default, named as such. */
	conf = smig_conf_new();
	g_free(conf->image_dir);
	conf->image_dir = g_strdup(file);
	ck_assert(!smig_conf_check_image_dir(conf, 0, &err));
	defpath = g_strdup_printf("migrate.conf: MigrateImageDir=%s (the default): a regular file, not a directory (create a directory owned by root, mode 0755)",
				  file);
	ck_assert_str_eq(err->message, defpath);
	g_free(defpath);
	g_clear_error(&err);
	smig_conf_free(conf);
	g_rmdir(dir);
	g_free(dir);
	g_free(file);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("conf");
	TCase *tc = tcase_create("conf");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 10);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_lines);
	tcase_add_test(tc, test_syntax_errors);
	tcase_add_test(tc, test_duplicate);
	tcase_add_test(tc, test_value_errors);
	tcase_add_test(tc, test_durations);
	tcase_add_test(tc, test_keep);
	tcase_add_test(tc, test_load_file);
	tcase_add_test(tc, test_load_bad_line);
	tcase_add_test(tc, test_load_missing_and_unreadable);
	tcase_add_test(tc, test_load_nul_byte);
	tcase_add_test(tc, test_balancer_addr_default);
	tcase_add_test(tc, test_path_beside);
	tcase_add_test(tc, test_image_dir_check);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
