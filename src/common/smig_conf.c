/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_conf.c - parse migrate.conf, with file:line errors
 */
#include "smig_config.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <glib.h>

#include "smig_conf.h"
#include "smig_error.h"

#define DEFAULT_PORT			6820
#define DEFAULT_POLL_INTERVAL_MS	10000
#define DEFAULT_CAPTURE_TIMEOUT_MS	60000
#define DEFAULT_RETRY_INTERVAL_MS	300000
#define DEFAULT_IMAGE_DIR		"/var/spool/slurm-migrate"
#define DEFAULT_RETAIN			2
#define DEFAULT_RELAUNCH_GRACE_MS	30000
#define DEFAULT_SAMPLE_INTERVAL_MS	30000
#define DEFAULT_RESTORE_TIMEOUT_MS	120000
#define DEFAULT_RELAUNCH_TRIES		3
#define MAX_RELAUNCH_TRIES		100
#define DEFAULT_BALANCER_ADDR		"localhost"
#define MAX_RETAIN			1000
#define DEFAULT_IMAGE_KEEP_S		(7u * 86400u)
#define DEFAULT_LINK_BW			1000000000ull	/* 1G: 1 GB/s */
/* MigrateLinkBandwidth: 1 KB/s to 10 TB/s. */
#define MIN_LINK_BW			1000ull
#define MAX_LINK_BW			10000000000000ull

typedef enum {
	KEY_BALANCER_ADDR,
	KEY_PORT,
	KEY_POLL_INTERVAL,
	KEY_CAPTURE_TIMEOUT,
	KEY_RETRY_INTERVAL,
	KEY_IMAGE_DIR,
	KEY_RETAIN,
	KEY_MUNGE_SOCKET,
	KEY_STATE_DIR,
	KEY_RELAUNCH_GRACE,
	KEY_SAMPLE_INTERVAL,
	KEY_HEALTH_FILE,
	KEY_IMAGE_STORE,
	KEY_RESTORE_TIMEOUT,
	KEY_RELAUNCH_TRIES,
	KEY_IMAGE_KEEP,
	KEY_IMAGE_KEEP_COMPLETED,
	KEY_LINK_BANDWIDTH,
	KEY_PARTNER_COPIES,
} conf_key_t;

/* In man-page order; the index is the conf_key_t. */
static const char *const key_names[SMIG_CONF_NKEYS] = {
	"MigrateBalancerAddr",
	"MigratePort",
	"MigratePollInterval",
	"MigrateCaptureTimeout",
	"MigrateRetryInterval",
	"MigrateImageDir",
	"MigrateRetain",
	"MigrateMungeSocket",
	"MigrateStateDir",
	"MigrateRelaunchGrace",
	"MigrateSampleInterval",
	"MigrateHealthFile",
	"MigrateImageStore",
	"MigrateRestoreTimeout",
	"MigrateRelaunchTries",
	"MigrateImageKeep",
	"MigrateImageKeepCompleted",
	"MigrateLinkBandwidth",
	"MigratePartnerCopies",
};

#define DURATION_EXAMPLES "examples: 30s, 5m, 1h"

/*
 * smig_conf_new - settings with every default
 * RET new settings, caller frees with smig_conf_free()
 */
smig_conf_t *smig_conf_new(void)
{
	smig_conf_t *conf = g_new0(smig_conf_t, 1);

	conf->balancer_addr = g_strdup(DEFAULT_BALANCER_ADDR);
	conf->port = DEFAULT_PORT;
	conf->poll_interval_ms = DEFAULT_POLL_INTERVAL_MS;
	conf->capture_timeout_ms = DEFAULT_CAPTURE_TIMEOUT_MS;
	conf->retry_interval_ms = DEFAULT_RETRY_INTERVAL_MS;
	conf->image_dir = g_strdup(DEFAULT_IMAGE_DIR);
	conf->retain = DEFAULT_RETAIN;
	conf->relaunch_grace_ms = DEFAULT_RELAUNCH_GRACE_MS;
	conf->sample_interval_ms = DEFAULT_SAMPLE_INTERVAL_MS;
	conf->restore_timeout_ms = DEFAULT_RESTORE_TIMEOUT_MS;
	conf->relaunch_tries = DEFAULT_RELAUNCH_TRIES;
	conf->image_keep_s = DEFAULT_IMAGE_KEEP_S;
	conf->link_bw = DEFAULT_LINK_BW;
	return conf;
}

/* smig_conf_tick_ms - see smig_conf.h */
uint32_t smig_conf_tick_ms(const smig_conf_t *conf)
{
	return MAX(MIN(conf->poll_interval_ms, SMIG_TICK_MAX_MS), 1);
}

/* smig_conf_free - free settings; NULL is a no-op */
void smig_conf_free(smig_conf_t *conf)
{
	if (!conf)
		return;
	g_free(conf->path);
	g_free(conf->balancer_addr);
	g_free(conf->image_dir);
	g_free(conf->munge_socket);
	g_free(conf->state_dir);
	g_free(conf->health_file);
	g_free(conf);
}

typedef struct {
	const char *suffix;	/* "": a bare number */
	uint64_t scale;
} unit_t;

/*
 * parse_scaled - digits and one suffix of units into a number of the
 * smallest unit
 * RET true if text is that and the result (and the number) is <= limit
 */
static bool parse_scaled(const char *text, const unit_t *units, size_t nunits,
			 uint64_t limit, uint64_t *out)
{
	uint64_t n = 0;
	const char *p = text;

	if (!text || !g_ascii_isdigit(*p))
		return false;
	for (; g_ascii_isdigit(*p); p++) {
		n = n * 10 + (uint64_t) (*p - '0');
		if (n > limit)
			return false;
	}
	for (size_t i = 0; i < nunits; i++) {
		if (g_ascii_strcasecmp(p, units[i].suffix))
			continue;
		if (n > limit / units[i].scale)
			return false;
		*out = n * units[i].scale;
		return true;
	}
	return false;
}

/*
 * smig_parse_duration - "500ms", "30s", "5m", "1h" or bare seconds into ms
 * RET true if text is a duration > 0 and < 2^32 ms
 */
bool smig_parse_duration(const char *text, uint32_t *ms)
{
	static const unit_t units[] = {
		{ "", 1000 }, { "s", 1000 }, { "ms", 1 }, { "m", 60 * 1000 },
		{ "h", 3600 * 1000 },
	};
	uint64_t n;

	if (!parse_scaled(text, units, G_N_ELEMENTS(units), UINT32_MAX, &n) ||
	    n == 0)
		return false;
	*ms = (uint32_t) n;
	return true;
}

/* smig_parse_bandwidth - see smig_conf.h */
bool smig_parse_bandwidth(const char *text, uint64_t *bw)
{
	static const unit_t units[] = {
		{ "", 1 }, { "K", 1000 }, { "M", 1000000 },
		{ "G", 1000000000 }, { "T", 1000000000000ull },
	};
	uint64_t n;

	if (!parse_scaled(text, units, G_N_ELEMENTS(units), MAX_LINK_BW,
			  &n) || n < MIN_LINK_BW)
		return false;
	*bw = n;
	return true;
}

/* smig_format_bandwidth - see smig_conf.h */
char *smig_format_bandwidth(uint64_t bw)
{
	static const char suffix[] = "TGMK";

	for (int i = 0; i < 4; i++) {
		uint64_t scale = 1;

		for (int j = i; j < 4; j++)
			scale *= 1000;
		if (bw && bw % scale == 0)
			return g_strdup_printf("%" G_GUINT64_FORMAT "%c",
					       bw / scale, suffix[i]);
	}
	return g_strdup_printf("%" G_GUINT64_FORMAT, bw);
}

/*
 * smig_format_duration - the shortest exact text of a duration
 * RET new string such as "30s", "5m", "1h", "500ms"; caller g_free()s
 */
char *smig_format_duration(uint32_t ms)
{
	if (ms == 0)
		return g_strdup("0s");
	if (ms % (3600 * 1000) == 0)
		return g_strdup_printf("%uh", ms / (3600 * 1000));
	if (ms % (60 * 1000) == 0)
		return g_strdup_printf("%um", ms / (60 * 1000));
	if (ms % 1000 == 0)
		return g_strdup_printf("%us", ms / 1000);
	return g_strdup_printf("%ums", ms);
}

/* smig_parse_keep - see smig_conf.h */
bool smig_parse_keep(const char *text, uint32_t *s)
{
	static const unit_t units[] = {
		{ "", 1 }, { "s", 1 }, { "m", 60 }, { "h", 3600 },
		{ "d", 86400 },
	};
	uint64_t n;

	if (!parse_scaled(text, units, G_N_ELEMENTS(units),
			  SMIG_CONF_KEEP_MAX_S, &n))
		return false;
	*s = (uint32_t) n;
	return true;
}

/* smig_format_keep - see smig_conf.h */
char *smig_format_keep(uint32_t s)
{
	if (s == 0)
		return g_strdup("0");
	if (s % 86400 == 0)
		return g_strdup_printf("%ud", s / 86400);
	if (s % 3600 == 0)
		return g_strdup_printf("%uh", s / 3600);
	if (s % 60 == 0)
		return g_strdup_printf("%um", s / 60);
	return g_strdup_printf("%us", s);
}

/* smig_parse_uint - see smig_conf.h */
bool smig_parse_uint(const char *text, uint32_t min, uint32_t max,
		     uint32_t *out)
{
	uint64_t n = 0;
	const char *p;

	if (!g_ascii_isdigit(*text))
		return false;
	for (p = text; g_ascii_isdigit(*p); p++) {
		n = n * 10 + (uint64_t) (*p - '0');
		if (n > max)
			return false;
	}
	if (*p || n < min)
		return false;
	*out = (uint32_t) n;
	return true;
}

/* A host name or address: printable, no blanks, no shell or list syntax. */
static bool valid_host(const char *text)
{
	size_t len = strlen(text);

	if (len == 0 || len > 255)
		return false;
	for (const char *p = text; *p; p++) {
		if (!g_ascii_isalnum(*p) && !strchr(".-_:[]", *p))
			return false;
	}
	return true;
}

static bool valid_abs_path(const char *text)
{
	if (text[0] != '/' || strlen(text) >= PATH_MAX)
		return false;
	for (const char *p = text; *p; p++) {
		if (g_ascii_iscntrl(*p))
			return false;
	}
	return true;
}

static int find_key(const char *name)
{
	for (int i = 0; i < SMIG_CONF_NKEYS; i++) {
		if (!g_ascii_strcasecmp(name, key_names[i]))
			return i;
	}
	return -1;
}

static char *key_list(void)
{
	GString *s = g_string_new(NULL);

	for (int i = 0; i < SMIG_CONF_NKEYS; i++)
		g_string_append_printf(s, "%s%s", i ? ", " : "", key_names[i]);
	return g_string_free(s, false);
}

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
			  const char *text, GError **error)
{
	char *copy, *hash, *eq, *key, *value;
	uint32_t n = 0;
	bool ok = false;
	int k;

	copy = g_strdup(text);
	if ((hash = strchr(copy, '#')))
		*hash = '\0';
	g_strstrip(copy);
	if (!*copy) {
		ok = true;
		goto out;
	}

	if (!(eq = strchr(copy, '='))) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_CONFIG,
			    "%s:%u: %s: missing '=' (Key=Value)",
			    path, line, copy);
		goto out;
	}
	*eq = '\0';
	key = g_strstrip(copy);
	value = g_strstrip(eq + 1);

	if ((k = find_key(key)) < 0) {
		char *keys = key_list();

		g_set_error(error, SMIG_ERROR, SMIG_ERROR_CONFIG,
			    "%s:%u: %s=%s: unknown key (%s)",
			    path, line, key, value, keys);
		g_free(keys);
		goto out;
	}
	if (conf->key_line[k]) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_CONFIG,
			    "%s:%u: %s=%s: duplicate key (already set on line %u; each key may appear once)",
			    path, line, key, value, conf->key_line[k]);
		goto out;
	}

	switch ((conf_key_t) k) {
	case KEY_BALANCER_ADDR:
		if (!valid_host(value)) {
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_CONFIG,
				    "%s:%u: %s=%s: not a host name or address (e.g. ctl1, 10.0.0.1)",
				    path, line, key, value);
			goto out;
		}
		g_free(conf->balancer_addr);
		conf->balancer_addr = g_strdup(value);
		break;
	case KEY_PORT:
		if (!smig_parse_uint(value, 1, 65535, &n)) {
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_CONFIG,
				    "%s:%u: %s=%s: not a port number (1-65535)",
				    path, line, key, value);
			goto out;
		}
		conf->port = (uint16_t) n;
		break;
	case KEY_POLL_INTERVAL:
	case KEY_CAPTURE_TIMEOUT:
	case KEY_RETRY_INTERVAL:
	case KEY_RELAUNCH_GRACE:
	case KEY_SAMPLE_INTERVAL:
	case KEY_RESTORE_TIMEOUT:
		if (!smig_parse_duration(value, &n)) {
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_CONFIG,
				    "%s:%u: %s=%s: not a duration (" DURATION_EXAMPLES ")",
				    path, line, key, value);
			goto out;
		}
		if (k == KEY_POLL_INTERVAL)
			conf->poll_interval_ms = n;
		else if (k == KEY_CAPTURE_TIMEOUT)
			conf->capture_timeout_ms = n;
		else if (k == KEY_RETRY_INTERVAL)
			conf->retry_interval_ms = n;
		else if (k == KEY_RELAUNCH_GRACE)
			conf->relaunch_grace_ms = n;
		else if (k == KEY_RESTORE_TIMEOUT)
			conf->restore_timeout_ms = n;
		else
			conf->sample_interval_ms = n;
		break;
	case KEY_IMAGE_DIR:
	case KEY_MUNGE_SOCKET:
	case KEY_STATE_DIR:
	case KEY_HEALTH_FILE:
		if (!valid_abs_path(value)) {
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_CONFIG,
				    "%s:%u: %s=%s: not an absolute path (e.g. %s)",
				    path, line, key, value,
				    k == KEY_MUNGE_SOCKET ?
				    "/run/munge/munge.socket.2" :
				    DEFAULT_IMAGE_DIR);
			goto out;
		}
		if (k == KEY_IMAGE_DIR) {
			g_free(conf->image_dir);
			conf->image_dir = g_strdup(value);
		} else if (k == KEY_MUNGE_SOCKET) {
			g_free(conf->munge_socket);
			conf->munge_socket = g_strdup(value);
		} else if (k == KEY_STATE_DIR) {
			g_free(conf->state_dir);
			conf->state_dir = g_strdup(value);
		} else {
			g_free(conf->health_file);
			conf->health_file = g_strdup(value);
		}
		break;
	case KEY_IMAGE_STORE:
		if (strcmp(value, "shared") && strcmp(value, "local")) {
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_CONFIG,
				    "%s:%u: %s=%s: not a kind of store (shared, local)",
				    path, line, key, value);
			goto out;
		}
		conf->image_store_local = !strcmp(value, "local");
		break;
	case KEY_PARTNER_COPIES:
		if (strcmp(value, "yes") && strcmp(value, "no")) {
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_CONFIG,
				    "%s:%u: %s=%s: not yes or no",
				    path, line, key, value);
			goto out;
		}
		conf->partner_copies = !strcmp(value, "yes");
		break;
	case KEY_RETAIN:
		if (!smig_parse_uint(value, 1, MAX_RETAIN, &n)) {
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_CONFIG,
				    "%s:%u: %s=%s: not a count of generations (1-%u)",
				    path, line, key, value, MAX_RETAIN);
			goto out;
		}
		conf->retain = n;
		break;
	case KEY_RELAUNCH_TRIES:
		if (!smig_parse_uint(value, 1, MAX_RELAUNCH_TRIES, &n)) {
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_CONFIG,
				    "%s:%u: %s=%s: not a number of tries (1-%u)",
				    path, line, key, value, MAX_RELAUNCH_TRIES);
			goto out;
		}
		conf->relaunch_tries = n;
		break;
	case KEY_IMAGE_KEEP:
	case KEY_IMAGE_KEEP_COMPLETED:
		if (!smig_parse_keep(value, &n)) {
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_CONFIG,
				    "%s:%u: %s=%s: not a keep time (0, or up to 3650d; examples: 7d, 12h, 30m)",
				    path, line, key, value);
			goto out;
		}
		if (k == KEY_IMAGE_KEEP)
			conf->image_keep_s = n;
		else
			conf->image_keep_completed_s = n;
		break;
	case KEY_LINK_BANDWIDTH:
		if (!smig_parse_bandwidth(value, &conf->link_bw)) {
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_CONFIG,
				    "%s:%u: %s=%s: not a bandwidth in bytes/s (1K to 10T, suffix K, M, G or T of 1000; examples: 1G, 12500M)",
				    path, line, key, value);
			goto out;
		}
		break;
	}
	conf->key_line[k] = line ? line : 1;
	ok = true;
out:
	g_free(copy);
	return ok;
}

/*
 * The controller's address from slurm.conf: the first SlurmctldHost line
 * ("name(addr)" gives addr, "name" gives name), else ControlAddr, else
 * ControlMachine, as Slurm reads them. RET new string or NULL.
 */
static char *slurmctld_addr(const char *slurm_conf)
{
	char *contents = NULL, **lines, *addr = NULL, *machine = NULL;
	char *ctl_addr = NULL;

	if (!slurm_conf ||
	    !g_file_get_contents(slurm_conf, &contents, NULL, NULL))
		return NULL;
	lines = g_strsplit(contents, "\n", -1);
	for (char **l = lines; *l && !addr; l++) {
		char *hash, *eq, *key, *value, *end;

		if ((hash = strchr(*l, '#')))
			*hash = '\0';
		if (!(eq = strchr(*l, '=')))
			continue;
		*eq = '\0';
		key = g_strstrip(*l);
		value = g_strstrip(eq + 1);
		/* One value per key; a line may carry more words after it. */
		value[strcspn(value, " \t")] = '\0';
		if (!*value)
			continue;
		if (!g_ascii_strcasecmp(key, "SlurmctldHost")) {
			char *open = strchr(value, '(');

			if (open && (end = strchr(open, ')')) &&
			    end > open + 1) {
				*end = '\0';
				addr = g_strdup(open + 1);
			} else {
				if (open)
					*open = '\0';
				addr = g_strdup(value);
			}
		} else if (!g_ascii_strcasecmp(key, "ControlAddr") &&
			   !ctl_addr) {
			ctl_addr = g_strdup(value);
		} else if (!g_ascii_strcasecmp(key, "ControlMachine") &&
			   !machine) {
			/* "a,b" lists backups too; the first is the primary. */
			value[strcspn(value, ",")] = '\0';
			machine = g_strdup(value);
		}
	}
	if (!addr)
		addr = ctl_addr ? g_steal_pointer(&ctl_addr) :
				  g_steal_pointer(&machine);
	g_free(ctl_addr);
	g_free(machine);
	g_strfreev(lines);
	g_free(contents);
	if (addr && !*addr)
		g_clear_pointer(&addr, g_free);
	return addr;
}

/*
 * smig_conf_load - read a migrate.conf
 * IN  path        - file to read (borrowed); a missing file gives defaults
 * IN  slurm_conf  - path of slurm.conf, for the MigrateBalancerAddr default
 *                   (borrowed, may be NULL)
 * OUT error       - first bad line, as smig_conf_parse_line(), or a file
 *                   that exists but cannot be read
 * RET new settings, caller frees with smig_conf_free(); NULL on error
 */
smig_conf_t *smig_conf_load(const char *path, const char *slurm_conf,
			    GError **error)
{
	smig_conf_t *conf = smig_conf_new();
	char *contents = NULL;
	GError *gerr = NULL;
	gsize len = 0;

	if (path && !g_file_get_contents(path, &contents, &len, &gerr)) {
		if (!g_error_matches(gerr, G_FILE_ERROR, G_FILE_ERROR_NOENT)) {
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_CONFIG,
				    "%s: cannot read: %s", path,
				    gerr->message);
			g_error_free(gerr);
			goto out_free_conf;
		}
		g_clear_error(&gerr);
	} else if (path) {
		const char *p = contents, *end = contents + len;
		unsigned line = 1;

		conf->path = g_strdup(path);
		while (p < end) {
			const char *nl = memchr(p, '\n', end - p);
			size_t n = nl ? (size_t) (nl - p) : (size_t) (end - p);
			char *text;

			if (memchr(p, '\0', n)) {
				g_set_error(error, SMIG_ERROR,
					    SMIG_ERROR_CONFIG,
					    "%s:%u: line contains a NUL byte (text only)",
					    path, line);
				goto out_free_contents;
			}
			text = g_strndup(p, n);
			if (!smig_conf_parse_line(conf, path, line, text,
						  error)) {
				g_free(text);
				goto out_free_contents;
			}
			g_free(text);
			p += n + 1;
			line++;
		}
		g_free(contents);
	}

	if (!conf->key_line[KEY_BALANCER_ADDR]) {
		char *addr = slurmctld_addr(slurm_conf);

		if (addr) {
			g_free(conf->balancer_addr);
			conf->balancer_addr = addr;
		}
	}
	return conf;

out_free_contents:
	g_free(contents);
out_free_conf:
	smig_conf_free(conf);
	return NULL;
}

/*
 * smig_conf_path_beside - where migrate.conf lives: beside slurm.conf
 * IN  slurm_conf - path of slurm.conf (borrowed); NULL: /etc/slurm
 * RET new string, caller frees with g_free()
 */
char *smig_conf_path_beside(const char *slurm_conf)
{
	char *dir, *path;

	if (!slurm_conf || !*slurm_conf)
		return g_strdup("/etc/slurm/migrate.conf");
	dir = g_path_get_dirname(slurm_conf);
	path = g_build_filename(dir, "migrate.conf", NULL);
	g_free(dir);
	return path;
}

static void pair_clear(gpointer p)
{
	smig_conf_pair_t *pair = p;

	g_free(pair->key);
	g_free(pair->value);
}

static void add_pair(GArray *pairs, conf_key_t k, char *value)
{
	smig_conf_pair_t pair = {
		.key = g_strdup(key_names[k]),
		.value = value,
	};

	g_array_append_val(pairs, pair);
}

/* Unset paths print as "(null)", as Slurm prints them. */
static char *str_or_null(const char *s)
{
	return g_strdup(s ? s : "(null)");
}

/*
 * smig_conf_pairs - every setting as Key/Value strings, in man-page order
 * RET new array of smig_conf_pair_t, caller frees with smig_conf_pairs_free()
 */
GArray *smig_conf_pairs(const smig_conf_t *conf)
{
	GArray *pairs = g_array_sized_new(false, true, sizeof(smig_conf_pair_t),
					  SMIG_CONF_NKEYS);

	g_array_set_clear_func(pairs, pair_clear);
	add_pair(pairs, KEY_BALANCER_ADDR, str_or_null(conf->balancer_addr));
	add_pair(pairs, KEY_PORT, g_strdup_printf("%u", conf->port));
	add_pair(pairs, KEY_POLL_INTERVAL,
		 smig_format_duration(conf->poll_interval_ms));
	add_pair(pairs, KEY_CAPTURE_TIMEOUT,
		 smig_format_duration(conf->capture_timeout_ms));
	add_pair(pairs, KEY_RETRY_INTERVAL,
		 smig_format_duration(conf->retry_interval_ms));
	add_pair(pairs, KEY_IMAGE_DIR, str_or_null(conf->image_dir));
	add_pair(pairs, KEY_RETAIN, g_strdup_printf("%u", conf->retain));
	add_pair(pairs, KEY_MUNGE_SOCKET, str_or_null(conf->munge_socket));
	add_pair(pairs, KEY_STATE_DIR, str_or_null(conf->state_dir));
	add_pair(pairs, KEY_RELAUNCH_GRACE,
		 smig_format_duration(conf->relaunch_grace_ms));
	add_pair(pairs, KEY_SAMPLE_INTERVAL,
		 smig_format_duration(conf->sample_interval_ms));
	add_pair(pairs, KEY_HEALTH_FILE, str_or_null(conf->health_file));
	add_pair(pairs, KEY_IMAGE_STORE,
		 g_strdup(conf->image_store_local ? "local" : "shared"));
	add_pair(pairs, KEY_RESTORE_TIMEOUT,
		 smig_format_duration(conf->restore_timeout_ms));
	add_pair(pairs, KEY_RELAUNCH_TRIES,
		 g_strdup_printf("%u", conf->relaunch_tries));
	add_pair(pairs, KEY_IMAGE_KEEP, smig_format_keep(conf->image_keep_s));
	add_pair(pairs, KEY_IMAGE_KEEP_COMPLETED,
		 smig_format_keep(conf->image_keep_completed_s));
	add_pair(pairs, KEY_LINK_BANDWIDTH,
		 smig_format_bandwidth(conf->link_bw));
	add_pair(pairs, KEY_PARTNER_COPIES,
		 g_strdup(conf->partner_copies ? "yes" : "no"));
	return pairs;
}

/* smig_conf_pairs_free - free smig_conf_pairs()'s array; NULL is a no-op */
void smig_conf_pairs_free(GArray *pairs)
{
	if (pairs)
		g_array_unref(pairs);
}

/* What a file that is not a directory is, for messages. RET static */
static const char *file_kind(mode_t mode)
{
	if (S_ISREG(mode))
		return "a regular file";
	if (S_ISLNK(mode))
		return "a symbolic link";
	if (S_ISSOCK(mode))
		return "a socket";
	if (S_ISFIFO(mode))
		return "a FIFO";
	if (S_ISCHR(mode) || S_ISBLK(mode))
		return "a device";
	return "not a directory";
}

/*
 * smig_conf_check_image_dir - whether MigrateImageDir can hold every job's
 * images safely: it exists and is a directory (a symbolic link the admin
 * wrote is followed), owned by root or trusted_uid, writable by nobody else
 * (no write bit for others; group write only for group root)
 * IN  conf        - settings (borrowed)
 * IN  trusted_uid - the other owner accepted (SlurmUser), or 0
 * OUT error       - "FILE:LINE: MigrateImageDir=VALUE: why (what to do)",
 *                   caller frees with g_error_free()
 * RET true if safe
 */
bool smig_conf_check_image_dir(const smig_conf_t *conf, uint32_t trusted_uid,
			       GError **error)
{
	const char *dir = conf->image_dir;
	unsigned line = conf->key_line[KEY_IMAGE_DIR];
	char *where;
	struct stat st;
	bool ok = false;

	if (line)
		where = g_strdup_printf("%s:%u: MigrateImageDir=%s",
					conf->path, line, dir);
	else
		where = g_strdup_printf("%s: MigrateImageDir=%s (the default)",
					conf->path ? conf->path :
					"migrate.conf", dir);
	if (stat(dir, &st) < 0) {
		int e = errno;

		g_set_error(error, SMIG_ERROR, SMIG_ERROR_CONFIG,
			    "%s: cannot use it: %s (create it: a directory owned by root, mode 0755)",
			    where, g_strerror(e));
		goto out;
	}
	if (!S_ISDIR(st.st_mode)) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_CONFIG,
			    "%s: %s, not a directory (create a directory owned by root, mode 0755)",
			    where, file_kind(st.st_mode));
		goto out;
	}
	if (st.st_uid != 0 && st.st_uid != trusted_uid) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_CONFIG,
			    "%s: owned by uid %u, not by root: its owner could plant or replace any job's directory (chown root)",
			    where, (unsigned) st.st_uid);
		goto out;
	}
	if (st.st_mode & S_IWOTH) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_CONFIG,
			    "%s: writable by every user (mode %04o): a user could plant another job's directory (chmod 0755)",
			    where, (unsigned) (st.st_mode & 07777));
		goto out;
	}
	if ((st.st_mode & S_IWGRP) && st.st_gid != 0) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_CONFIG,
			    "%s: writable by group %u (mode %04o): its members could plant another job's directory (chmod 0755)",
			    where, (unsigned) st.st_gid,
			    (unsigned) (st.st_mode & 07777));
		goto out;
	}
	ok = true;
out:
	g_free(where);
	return ok;
}

bool smig_conf_default_state_dir(smig_conf_t *conf, const char *save,
				 GError **error)
{
	char *dir;

	if (conf->state_dir)
		return true;
	dir = g_build_filename(save ? save : "/", "migrate", NULL);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		int e = errno;

		g_set_error(error, SMIG_ERROR, SMIG_ERROR_CONFIG,
			    "MigrateStateDir unset: cannot create the default %s (StateSaveLocation/migrate): %s",
			    dir, g_strerror(e));
		g_free(dir);
		return false;
	}
	conf->state_dir = dir;
	return true;
}
