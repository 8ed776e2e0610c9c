/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_request.c - parse and print a user's --migrate request
 */
#include "smig_config.h"

#include <signal.h>
#include <string.h>
#include <glib.h>

#include "smig_conf.h"
#include "smig_error.h"
#include "smig_hostlist.h"
#include "smig_request.h"

#define MAX_SPARES	1024
#define MIN_INTERVAL_MS	100	/* the agent samples no faster */
#define MAX_MOVES	1000000

#define MODES	"auto, advise, manual, off"
#define KEYS	"mode, capture, interval, every, capture-timeout, spares, max-moves, affinity, precopy"

static const struct {
	const char *name;
	smig_mode_t mode;
} modes[] = {
	{ "auto", SMIG_MODE_AUTO },
	{ "advise", SMIG_MODE_ADVISE },
	{ "manual", SMIG_MODE_MANUAL },
	{ "off", SMIG_MODE_OFF },
};

/* Signals an application can catch to write its own checkpoint. */
static const struct {
	const char *name;
	int sig;
} signals[] = {
	{ "HUP", SIGHUP },
	{ "INT", SIGINT },
	{ "QUIT", SIGQUIT },
	{ "ALRM", SIGALRM },
	{ "TERM", SIGTERM },
	{ "USR1", SIGUSR1 },
	{ "USR2", SIGUSR2 },
	{ "CONT", SIGCONT },
	{ "URG", SIGURG },
	{ "WINCH", SIGWINCH },
};

enum {
	SEEN_MODE = 1 << 0,
	SEEN_CAPTURE = 1 << 1,
	SEEN_INTERVAL = 1 << 2,
	SEEN_EVERY = 1 << 3,
	SEEN_TIMEOUT = 1 << 4,
	SEEN_SPARES = 1 << 5,
	SEEN_MAX_MOVES = 1 << 6,
	SEEN_AFFINITY = 1 << 7,
	SEEN_PRECOPY = 1 << 8,
};

/* smig_request_init - the request of a bare --migrate (mode auto) */
void smig_request_init(smig_request_t *req)
{
	memset(req, 0, sizeof(*req));
	req->mode = SMIG_MODE_AUTO;
	req->capture = SMIG_CAPTURE_CALLBACK;
}

/* smig_mode_name - "off", "auto", "advise", "manual" (static) */
const char *smig_mode_name(smig_mode_t mode)
{
	for (size_t i = 0; i < G_N_ELEMENTS(modes); i++) {
		if (modes[i].mode == mode)
			return modes[i].name;
	}
	return "unknown";
}

static bool find_mode(const char *word, smig_mode_t *mode)
{
	for (size_t i = 0; i < G_N_ELEMENTS(modes); i++) {
		if (!strcmp(word, modes[i].name)) {
			*mode = modes[i].mode;
			return true;
		}
	}
	return false;
}

static const char *signal_name(int sig)
{
	for (size_t i = 0; i < G_N_ELEMENTS(signals); i++) {
		if (signals[i].sig == sig)
			return signals[i].name;
	}
	return NULL;
}

/* "USR1" or "SIGUSR1", any case. */
static bool find_signal(const char *word, int *sig)
{
	if (!g_ascii_strncasecmp(word, "SIG", 3))
		word += 3;
	for (size_t i = 0; i < G_N_ELEMENTS(signals); i++) {
		if (!g_ascii_strcasecmp(word, signals[i].name)) {
			*sig = signals[i].sig;
			return true;
		}
	}
	return false;
}

/* One "key=value" item (value may be NULL for a bare key). */
static bool parse_item(smig_request_t *req, unsigned *seen, const char *key,
		       const char *value, GError **error)
{
	unsigned bit;

	if (!strcmp(key, "mode"))
		bit = SEEN_MODE;
	else if (!strcmp(key, "capture"))
		bit = SEEN_CAPTURE;
	else if (!strcmp(key, "interval"))
		bit = SEEN_INTERVAL;
	else if (!strcmp(key, "every"))
		bit = SEEN_EVERY;
	else if (!strcmp(key, "capture-timeout"))
		bit = SEEN_TIMEOUT;
	else if (!strcmp(key, "spares"))
		bit = SEEN_SPARES;
	else if (!strcmp(key, "max-moves"))
		bit = SEEN_MAX_MOVES;
	else if (!strcmp(key, "affinity"))
		bit = SEEN_AFFINITY;
	else if (!strcmp(key, "precopy"))
		bit = SEEN_PRECOPY;
	else {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_REQUEST,
			    "%s: unknown key (" KEYS ")", key);
		return false;
	}
	if (*seen & bit) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_REQUEST,
			    "%s%s%s: %s given twice (each at most once)",
			    key, value ? "=" : "", value ? value : "", key);
		return false;
	}
	*seen |= bit;

	if (!value && bit != SEEN_AFFINITY) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_REQUEST,
			    "%s: missing value (%s=VALUE)", key, key);
		return false;
	}

	switch (bit) {
	case SEEN_MODE:
		if (!find_mode(value, &req->mode)) {
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_REQUEST,
				    "mode=%s: unknown mode (" MODES ")", value);
			return false;
		}
		break;
	case SEEN_CAPTURE:
		if (!strcmp(value, "callback")) {
			req->capture = SMIG_CAPTURE_CALLBACK;
			req->capture_signal = 0;
		} else if (!strncmp(value, "signal:", 7)) {
			if (!find_signal(value + 7, &req->capture_signal)) {
				g_set_error(error, SMIG_ERROR,
					    SMIG_ERROR_REQUEST,
					    "capture=%s: unknown signal (e.g. signal:USR1)",
					    value);
				return false;
			}
			req->capture = SMIG_CAPTURE_SIGNAL;
		} else {
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_REQUEST,
				    "capture=%s: unknown capture method (callback, signal:SIG)",
				    value);
			return false;
		}
		break;
	case SEEN_INTERVAL:
	case SEEN_EVERY:
	case SEEN_TIMEOUT: {
		uint32_t ms;

		if (!smig_parse_duration(value, &ms)) {
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_REQUEST,
				    "%s=%s: not a duration (examples: 30s, 5m, 1h)",
				    key, value);
			return false;
		}
		if (bit == SEEN_INTERVAL && ms < MIN_INTERVAL_MS) {
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_REQUEST,
				    "%s=%s: too short (at least %ums; examples: 30s, 5m, 1h)",
				    key, value, MIN_INTERVAL_MS);
			return false;
		}
		if (bit == SEEN_INTERVAL)
			req->interval_ms = ms;
		else if (bit == SEEN_EVERY)
			req->every_ms = ms;
		else
			req->capture_timeout_ms = ms;
		break;
	}
	case SEEN_SPARES:
		if (!smig_parse_uint(value, 0, MAX_SPARES, &req->spares)) {
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_REQUEST,
				    "spares=%s: not a count (0-%u)", value,
				    MAX_SPARES);
			return false;
		}
		break;
	case SEEN_MAX_MOVES:
		if (!smig_parse_uint(value, 0, MAX_MOVES, &req->max_moves)) {
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_REQUEST,
				    "max-moves=%s: not a count (0-%u, 0: no limit)",
				    value, MAX_MOVES);
			return false;
		}
		break;
	case SEEN_PRECOPY:
		if (!strcmp(value, "on")) {
			req->precopy = true;
		} else if (!strcmp(value, "off")) {
			req->precopy = false;
		} else {
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_REQUEST,
				    "precopy=%s: not on or off (precopy=on, precopy=off)",
				    value);
			return false;
		}
		break;
	case SEEN_AFFINITY:
		if (!value || !strcmp(value, "yes")) {
			req->affinity = true;
		} else if (!strcmp(value, "no")) {
			req->affinity = false;
		} else {
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_REQUEST,
				    "affinity=%s: not yes or no (affinity, affinity=yes, affinity=no)",
				    value);
			return false;
		}
		break;
	}
	return true;
}

/*
 * smig_request_parse - parse the value of --migrate
 * IN  text  - the option's value, NULL or "" for a bare --migrate (borrowed)
 * OUT req   - the request (fully set on success; untouched on error)
 * OUT error - SMIG_ERROR_REQUEST naming the item, e.g.
 *             "mode=bogus: unknown mode (auto, advise, manual, off)";
 *             caller frees with g_error_free()
 * RET true on success
 */
bool smig_request_parse(const char *text, smig_request_t *req, GError **error)
{
	smig_request_t r;
	unsigned seen = 0;
	char **items;
	bool ok = false;

	smig_request_init(&r);
	/* Empty: a bare --migrate (Slurm forwards one given to sbatch or
	 * salloc as an empty value), so the defaults. */
	if (!text || !*text) {
		*req = r;
		return true;
	}
	/* Quoted once, in part: a huge value must not flood the terminal. */
	if (strlen(text) > SMIG_REQUEST_MAX_LEN) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_REQUEST,
			    "a value of %zu bytes beginning \"%.32s\" (at most %u bytes)",
			    strlen(text), text, SMIG_REQUEST_MAX_LEN);
		return false;
	}
	items = g_strsplit(text, ",", -1);
	for (char **it = items; *it; it++) {
		char *eq = strchr(*it, '=');
		smig_mode_t mode;

		if (!**it) {
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_REQUEST,
				    "empty item in \"%s\" (MODE and key=value items separated by single commas)",
				    text);
			goto out;
		}
		if (eq) {
			*eq = '\0';
			if (!parse_item(&r, &seen, *it, eq + 1, error))
				goto out;
		} else if (find_mode(*it, &mode)) {
			if (seen & SEEN_MODE) {
				g_set_error(error, SMIG_ERROR,
					    SMIG_ERROR_REQUEST,
					    "%s: mode given twice (each at most once)",
					    *it);
				goto out;
			}
			seen |= SEEN_MODE;
			r.mode = mode;
		} else if (!strcmp(*it, "affinity")) {
			if (!parse_item(&r, &seen, *it, NULL, error))
				goto out;
		} else if (!strcmp(*it, "mode") || !strcmp(*it, "capture") ||
			   !strcmp(*it, "interval") || !strcmp(*it, "every") ||
			   !strcmp(*it, "capture-timeout") ||
			   !strcmp(*it, "spares") ||
			   !strcmp(*it, "max-moves") ||
			   !strcmp(*it, "precopy")) {
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_REQUEST,
				    "%s: missing value (%s=VALUE)", *it, *it);
			goto out;
		} else {
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_REQUEST,
				    "%s: neither a mode (" MODES ") nor a key (" KEYS ")",
				    *it);
			goto out;
		}
	}
	*req = r;
	ok = true;
out:
	g_strfreev(items);
	return ok;
}

/*
 * smig_request_to_string - canonical text that smig_request_parse() accepts
 * (mode and capture always; other keys only when not at their default)
 * RET new string such as "mode=auto,capture=callback", caller g_free()s
 */
char *smig_request_to_string(const smig_request_t *req)
{
	GString *s = g_string_new(NULL);
	const char *sig;

	g_string_append_printf(s, "mode=%s", smig_mode_name(req->mode));
	if (req->capture == SMIG_CAPTURE_SIGNAL &&
	    (sig = signal_name(req->capture_signal)))
		g_string_append_printf(s, ",capture=signal:%s", sig);
	else
		g_string_append(s, ",capture=callback");
	if (req->interval_ms) {
		char *d = smig_format_duration(req->interval_ms);

		g_string_append_printf(s, ",interval=%s", d);
		g_free(d);
	}
	if (req->every_ms) {
		char *d = smig_format_duration(req->every_ms);

		g_string_append_printf(s, ",every=%s", d);
		g_free(d);
	}
	if (req->capture_timeout_ms) {
		char *d = smig_format_duration(req->capture_timeout_ms);

		g_string_append_printf(s, ",capture-timeout=%s", d);
		g_free(d);
	}
	if (req->spares)
		g_string_append_printf(s, ",spares=%u", req->spares);
	if (req->max_moves)
		g_string_append_printf(s, ",max-moves=%u", req->max_moves);
	if (req->affinity)
		g_string_append(s, ",affinity");
	/* libsmig reads it from SLURM_MIGRATE (this text). */
	if (req->precopy)
		g_string_append(s, ",precopy=on");
	return g_string_free(s, false);
}

/* smig_request_spares - see smig_request.h */
bool smig_request_spares(const smig_request_t *req, char *const *alloc,
			 const char *user_nodes, uint32_t *nnodes,
			 char **spares, GError **error)
{
	uint32_t k = alloc ? g_strv_length((char **) alloc) : 0;
	uint32_t n = req->spares, lo = 0, hi = 0;
	const char *dash;
	char *all, *part;
	bool ok;

	all = smig_hostlist_compress((const char *const *) alloc);
	if (n >= k) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_REQUEST,
			    "spares=%u: the allocation has %u node%s (%s); at least one must run the step (ask sbatch or salloc for more nodes, or for fewer spares)",
			    n, k, k == 1 ? "" : "s", all);
		g_free(all);
		return false;
	}
	*nnodes = k - n;
	if (user_nodes) {
		/* "2" or "2-3": srun's canonical text of -N. */
		dash = strchr(user_nodes, '-');
		part = dash ? g_strndup(user_nodes, dash - user_nodes) :
			      g_strdup(user_nodes);
		ok = smig_parse_uint(part, 1, UINT32_MAX, &lo) &&
		     (!dash || smig_parse_uint(dash + 1, 0, UINT32_MAX, &hi));
		g_free(part);
		if (!ok) {
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_REQUEST,
				    "spares=%u: srun's -N/--nodes is \"%s\", not a node count",
				    n, user_nodes);
			g_free(all);
			return false;
		}
		if (lo > k - n) {
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_REQUEST,
				    "spares=%u with -N/--nodes=%s: the allocation has %u nodes (%s), so the step may use at most %u; drop -N, give -N%u or less, or ask for fewer spares",
				    n, user_nodes, k, all, k - n, k - n);
			g_free(all);
			return false;
		}
		/* The user's -N stands; a maximum above K - N (hi) is met
		 * by Slurm with the nodes --exclude leaves. */
		*nnodes = 0;
	}
	*spares = smig_hostlist_compress((const char *const *) alloc + k - n);
	g_free(all);
	return true;
}

/*
 * smig_request_check_supported - see smig_request.h. Every key of the
 * grammar is acted on since spares= (issue 20); a later key that is parsed
 * before it works refuses itself here, naming the setting.
 */
bool smig_request_check_supported(const smig_request_t *req, GError **error)
{
	(void) req;
	(void) error;
	return true;
}
