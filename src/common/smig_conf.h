/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_conf.h - migrate.conf: the admin's settings, parsed with file:line errors
 *
 * Syntax as slurm.conf: "Key=Value" per line, '#' starts a comment, keys are
 * case-insensitive, blank lines ignored. Every key, its default and an example
 * are in doc/man/man5/migrate.conf.5.in. A missing file means all defaults.
 */
#ifndef SMIG_CONF_H
#define SMIG_CONF_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

/* Number of keys migrate.conf knows. */
#define SMIG_CONF_NKEYS 19

typedef struct smig_conf {
	char *path;			/* file read, NULL if defaults only */
	char *balancer_addr;		/* MigrateBalancerAddr (default: the
					 * address of slurm.conf's first
					 * SlurmctldHost, else "localhost") */
	uint16_t port;			/* MigratePort, default 6820 */
	uint32_t poll_interval_ms;	/* MigratePollInterval, default 10s */
	uint32_t capture_timeout_ms;	/* MigrateCaptureTimeout, default 60s */
	uint32_t retry_interval_ms;	/* MigrateRetryInterval, default 5m */
	char *image_dir;		/* MigrateImageDir, default
					 * /var/spool/slurm-migrate */
	uint32_t retain;		/* MigrateRetain: generations kept, >= 1,
					 * default 2 */
	char *munge_socket;		/* MigrateMungeSocket, default NULL
					 * (munge's own default socket) */
	char *state_dir;		/* MigrateStateDir, default NULL (the
					 * balancer's host picks, slurmctld:
					 * StateSaveLocation) */
	uint32_t relaunch_grace_ms;	/* MigrateRelaunchGrace, default 30s: how
					 * long srun waits for the old ranks to
					 * exit after a committed move before it
					 * kills the old step */
	uint32_t sample_interval_ms;	/* MigrateSampleInterval, default 30s:
					 * how often agents sample ranks (a
					 * step's interval= overrides it) */
	char *health_file;		/* MigrateHealthFile, default NULL: a
					 * file whose first word (ok, warn,
					 * fail) is the node's health */
	bool image_store_local;		/* MigrateImageStore=local: images
					 * stay on the node that wrote them
					 * (<MigrateImageDir>/<node>/<job>) and
					 * are handed off to the target node's
					 * agent; default shared */
	uint32_t restore_timeout_ms;	/* MigrateRestoreTimeout, default 2m:
					 * how long the ranks of a relaunched
					 * step have to be past their restore
					 * before it is relaunched again */
	uint32_t relaunch_tries;	/* MigrateRelaunchTries, default 3:
					 * starts of one relaunch, the first
					 * included, 1 to 100 */
	uint32_t image_keep_s;		/* MigrateImageKeep, default 7d: how
					 * long the images of a job that ended
					 * badly (failed, cancelled, timeout,
					 * node failure, ...) stay after its
					 * end; 0: removed at once like those
					 * of a completed job (doc/images.md,
					 * "When a job ends") */
	uint32_t image_keep_completed_s; /* MigrateImageKeepCompleted,
					 * default 0: the same for a job that
					 * completed (0: removed at its end) */
	uint64_t link_bw;		/* MigrateLinkBandwidth, default 1G:
					 * bytes/s the policy engine assumes
					 * between two nodes until measured
					 * moves teach it better (the prior,
					 * doc/design.md "Calibration") */
	bool partner_copies;		/* MigratePartnerCopies=yes: with
					 * MigrateImageStore=local, each good
					 * generation of a periodic capture is
					 * also copied to a partner node of the
					 * step; default no */
	/* private: line that set each key (0: default), for duplicates */
	unsigned key_line[SMIG_CONF_NKEYS];
} smig_conf_t;

/* A key with its value as printed by "scontrol show config". */
typedef struct smig_conf_pair {
	char *key;
	char *value;
} smig_conf_pair_t;

/*
 * smig_conf_new - settings with every default
 * RET new settings, caller frees with smig_conf_free()
 */
smig_conf_t *smig_conf_new(void);

/*
 * smig_parse_bandwidth - MigrateLinkBandwidth's value: a count of bytes/s
 * with an optional suffix K, M, G or T (powers of 1000), 1K to 10T
 * OUT bw - bytes/s
 * RET false if text is not such a value
 */
bool smig_parse_bandwidth(const char *text, uint64_t *bw);

/* smig_format_bandwidth - "1G", "12500M", "1500": caller g_free()s */
char *smig_format_bandwidth(uint64_t bw);

/*
 * smig_parse_keep - MigrateImageKeep's value: "0", or a count with unit s, m,
 * h or d (bare: seconds), at most SMIG_CONF_KEEP_MAX_S
 * OUT s - seconds
 * RET false if text is not such a value
 */
bool smig_parse_keep(const char *text, uint32_t *s);

/* Longest MigrateImageKeep: 3650 days. */
#define SMIG_CONF_KEEP_MAX_S (3650u * 86400u)

/*
 * smig_format_keep - the shortest exact text of a MigrateImageKeep
 * RET new string such as "7d", "90m", "0"; caller g_free()s
 */
char *smig_format_keep(uint32_t s);

/*
 * smig_conf_tick_ms - period of the balancer's clock: MigratePollInterval or
 * SMIG_TICK_MAX_MS, whichever is shorter. Deadlines (capture timeout,
 * relaunch watchdog) are checked every tick; slurmctld is asked about node
 * and job states at most once per MigratePollInterval.
 */
#define SMIG_TICK_MAX_MS 2000
uint32_t smig_conf_tick_ms(const smig_conf_t *conf);

/* smig_conf_free - free settings; NULL is a no-op */
void smig_conf_free(smig_conf_t *conf);

/*
 * smig_conf_parse_line - apply one line of migrate.conf
 * IN  conf  - settings to update
 * IN  path  - file name, for messages (borrowed)
 * IN  line  - 1-based line number, for messages
 * IN  text  - the line without its newline (borrowed)
 * OUT error - "PATH:LINE: Key=Value: what is wrong (what is accepted)";
 *             caller frees with g_error_free()
 * RET true if the line was valid (comments and blank lines are valid)
 */
bool smig_conf_parse_line(smig_conf_t *conf, const char *path, unsigned line,
			  const char *text, GError **error);

/*
 * smig_conf_load - read a migrate.conf
 * IN  path        - file to read (borrowed); a missing file gives defaults
 * IN  slurm_conf  - path of slurm.conf, for the MigrateBalancerAddr default
 *                   (borrowed, may be NULL)
 * OUT error       - first bad line, as smig_conf_parse_line()
 * RET new settings, caller frees with smig_conf_free(); NULL on error
 */
smig_conf_t *smig_conf_load(const char *path, const char *slurm_conf,
			    GError **error);

/*
 * smig_conf_path_beside - where migrate.conf lives: beside slurm.conf
 * IN  slurm_conf - path of slurm.conf (borrowed)
 * RET new string, caller frees with g_free()
 */
char *smig_conf_path_beside(const char *slurm_conf);

/*
 * smig_conf_pairs - every setting as Key/Value strings, in man-page order
 * RET new array of smig_conf_pair_t, caller frees with smig_conf_pairs_free()
 */
GArray *smig_conf_pairs(const smig_conf_t *conf);
void smig_conf_pairs_free(GArray *pairs);

/*
 * smig_parse_duration - "500ms", "30s", "5m", "1h", or a bare number of
 * seconds, into milliseconds (> 0, < 2^32)
 * RET true on success
 */
bool smig_parse_duration(const char *text, uint32_t *ms);

/*
 * smig_parse_uint - a decimal integer in [min, max] and nothing else (no
 * sign, no blanks, no other base)
 * RET true and *out set on success; *out untouched otherwise
 */
bool smig_parse_uint(const char *text, uint32_t min, uint32_t max,
		     uint32_t *out);

/*
 * smig_conf_check_image_dir - whether MigrateImageDir can hold every job's
 * images safely: an existing directory (symbolic links followed) owned by
 * root or trusted_uid, not writable by others nor by a group but root's
 * IN  trusted_uid - the other owner accepted (SlurmUser), or 0
 * OUT error       - "FILE:LINE: MigrateImageDir=VALUE: why (what to do)";
 *                   caller frees with g_error_free()
 * RET true if safe
 */
/*
 * smig_conf_default_state_dir - MigrateStateDir unset: <save>/migrate (save:
 * Slurm's StateSaveLocation), made here (mode 0700, the caller's user) if
 * it does not exist yet; a set MigrateStateDir is left alone
 * IN  save  - StateSaveLocation (borrowed)
 * OUT error - why it cannot be made; caller g_error_free()s
 * RET false with error set if it cannot be made
 */
bool smig_conf_default_state_dir(smig_conf_t *conf, const char *save,
				 GError **error);

bool smig_conf_check_image_dir(const smig_conf_t *conf, uint32_t trusted_uid,
			       GError **error);

/* smig_format_duration - milliseconds as the shortest exact "30s"/"5m"/"500ms"; caller g_free()s */
char *smig_format_duration(uint32_t ms);

#endif /* SMIG_CONF_H */
