/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_request.h - a user's --migrate[=MODE][,key=value...] request
 *
 * Grammar: an empty value (bare --migrate) means mode auto. Otherwise a
 * comma-separated list: at most one bare mode word (auto, advise, manual, off)
 * and key=value items: mode=, capture=callback|signal:SIG, interval=DURATION,
 * every=DURATION, capture-timeout=DURATION, spares=N, max-moves=N, affinity
 * (bare, or affinity=yes|no), precopy=on|off. Unknown keys, repeated keys and bad values are
 * errors naming the key and value and what is accepted.
 */
#ifndef SMIG_REQUEST_H
#define SMIG_REQUEST_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

/* Longest --migrate value accepted (a long one is quoted in part). */
#define SMIG_REQUEST_MAX_LEN	1024

typedef enum {
	SMIG_MODE_OFF,		/* nothing happens for this job */
	SMIG_MODE_AUTO,		/* the balancer moves ranks when it pays */
	SMIG_MODE_ADVISE,	/* decide and report, never move */
	SMIG_MODE_MANUAL,	/* move only on drain or explicit request */
} smig_mode_t;

typedef enum {
	SMIG_CAPTURE_CALLBACK,	/* the app registered callbacks (libsmig) */
	SMIG_CAPTURE_SIGNAL,	/* send a signal, the app writes a file */
} smig_capture_t;

typedef struct smig_request {
	smig_mode_t mode;
	smig_capture_t capture;
	int capture_signal;		/* with SMIG_CAPTURE_SIGNAL */
	uint32_t interval_ms;		/* 0: migrate.conf's */
	uint32_t every_ms;		/* periodic capture, 0: off */
	uint32_t capture_timeout_ms;	/* 0: migrate.conf's */
	uint32_t spares;		/* nodes of the allocation the step
					 * is not launched on, kept free as
					 * hot spares for moves */
	uint32_t max_moves;		/* 0: no limit */
	bool affinity;			/* count bytes between ranks */
	bool precopy;			/* libsmig pre-copies registered
					 * memory regions (default off) */
} smig_request_t;

/* smig_request_init - the request of a bare --migrate (mode auto) */
void smig_request_init(smig_request_t *req);

/*
 * smig_request_parse - parse the value of --migrate
 * IN  text  - the option's value, NULL or "" for a bare --migrate (borrowed)
 * OUT req   - the request (fully set on success)
 * OUT error - e.g. "mode=bogus: unknown mode (auto, advise, manual, off)";
 *             caller frees with g_error_free()
 * RET true on success
 */
bool smig_request_parse(const char *text, smig_request_t *req, GError **error);

/*
 * smig_request_check_supported - refuse what this version parses but does
 * not do yet, so that a user never believes a setting took effect when it
 * did not (capture=signal:, interval=, every=, spares=, affinity in 0.1.0;
 * every key is acted on since spares= landed)
 * IN  req   - a parsed request
 * OUT error - e.g. "every=10m: periodic capture is not supported by
 *             slurm-migrate 0.1.0"; caller frees with g_error_free()
 * RET true if every setting of req is acted on
 */
bool smig_request_check_supported(const smig_request_t *req, GError **error);

/*
 * smig_request_to_string - canonical text that smig_request_parse() accepts
 * RET new string such as "mode=auto,capture=callback", caller g_free()s
 */
char *smig_request_to_string(const smig_request_t *req);

/*
 * smig_request_spares - how srun launches a step with spares=N (N > 0) in
 * its allocation of K nodes: on K - N nodes, the last N left out as hot
 * spares. Refused (naming spares= and the value) when N >= K, or when the
 * user's own -N asks for more than K - N nodes.
 * IN  req        - a parsed request, req->spares > 0
 * IN  alloc      - the allocation's nodes in order (SLURM_JOB_NODELIST
 *                  expanded), NULL-terminated (borrowed)
 * IN  user_nodes - the -N/--nodes the user gave srun ("2" or "2-3"), NULL
 *                  when none (srun then gets --nodes=K-N)
 * OUT nnodes     - the --nodes to add; 0: keep the user's -N
 * OUT spares     - the nodes to leave out (--exclude=), ranged as Slurm
 *                  writes them ("node[3-4]"); caller g_free()s
 * OUT error      - e.g. "spares=3: the allocation has 3 nodes (node[1-3]);
 *                  at least one must run the step"
 * RET true on success
 */
bool smig_request_spares(const smig_request_t *req, char *const *alloc,
			 const char *user_nodes, uint32_t *nnodes,
			 char **spares, GError **error);

/* smig_mode_name - "off", "auto", "advise", "manual" (static) */
const char *smig_mode_name(smig_mode_t mode);

#endif /* SMIG_REQUEST_H */
