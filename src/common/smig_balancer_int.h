/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_balancer_int.h - what the files of the balancer share: its limits,
 * its types and its internal functions (prefix bal_), never a variable
 *
 * Private to src/common/smig_balancer*.c (doc/design.md, "Source layout").
 * Everything declared here is used on the balancer's thread only, except
 * where smig_balancer.c says otherwise.
 */
#ifndef SMIG_BALANCER_INT_H
#define SMIG_BALANCER_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <glib.h>

#include "smig_balancer.h"
#include "smig_decide.h"
#include "smig_log.h"
#include "smig_metrics.h"
#include "smig_msgs.h"
#include "smig_policy.h"
#include "smig_request.h"
#include "smig_wire.h"

/* Bounds on what one peer can make the balancer keep. */
#define MAX_RANKS	65536		/* ranks of one step */
#define MAX_NODES	16384		/* nodes of one allocation */
#define MAX_STEPS	4096		/* steps tracked at once */
#define MAX_JOB_STEPS	256		/* of them, steps of one job */
#define MAX_CONNS	65536		/* open connections, at most; fewer
					 * if RLIMIT_NOFILE is lower */
#define SPARE_FDS	64		/* left to the host (slurmctld's own
					 * sockets, files, munge) */
#define MIN_CONNS	16		/* even under a tiny RLIMIT_NOFILE */
#define ACCEPT_PAUSE_MS	1000		/* no accept after EMFILE/ENFILE */
#define ACCEPT_BATCH	64		/* accepts per listener wake-up */
#define MAX_OUTQ	(8u << 20)	/* bytes queued to one slow peer */
#define MAX_IN_TOTAL	(64u << 20)	/* bytes of incomplete frames held,
					 * all connections together */
#define READ_CHUNK	65536
#define MAX_REASON	512		/* bytes of a refusal's reason */
#define IDLE_POLLS	15		/* a peer that sent no message in this
					 * many ticks (smig_conf_tick_ms())
					 * is closed */
/* Automatic balancing and the decision history (doc/design.md). */
#define HISTORY_MAX	32		/* decisions kept per job */
#define COOLDOWN_WINDOWS 3		/* no balancing decision for this many
					 * sample windows after a move */
#define STALE_SAMPLES	3		/* an agent silent for this many
					 * intervals: no decision */
#define AUTO_HYSTERESIS	0.2		/* a balancing move must shorten the
					 * iteration by 20 % (the estimate's
					 * noise is about 10 % here) */
#define HORIZON_S	3600.0		/* remaining run of a job without a
					 * time limit */
#define RELAUNCH_COST_S	5.0		/* a move's capture, stop, relaunch
					 * and restore (bench: 0.45 s for 4
					 * small ranks; kept conservative) */
#define IMAGE_BW	200e6		/* bytes/s an image is written, read
					 * or handed off at (bench-images:
					 * 0.4-1.8 GB/s; conservative) */

typedef struct bal_job bal_job_t;
typedef struct bal_step bal_step_t;

typedef enum {
	ROLE_NONE,		/* not registered (yet) */
	ROLE_SRUN,
	ROLE_AGENT,
} bal_conn_role_t;

/*
 * One epoll set, watched by one GSource: GLib's own unix-fd sources would
 * make every wake-up of the loop poll() every connection (ten thousand node
 * agents), while epoll_wait() returns only the ready ones.
 */
typedef struct bal_poller {
	GSource src;
	int epfd;
	bool dispatching;
	GSList *graveyard;	/* fd_source_t freed during a dispatch */
} bal_poller_t;

/* One fd in a poller, calling io(data, condition) when it is ready. */
typedef struct bal_fd {
	bal_poller_t *p;
	int fd;
	void (*io)(void *data, GIOCondition cond);	/* NULL once freed */
	void *data;
} bal_fd_t;

typedef struct bal_conn {
	smig_balancer_t *b;
	int fd;
	bal_fd_t *src;
	char *peer;		/* "addr:port", for messages */
	GByteArray *in;
	GQueue out;		/* of GBytes */
	size_t out_off;		/* bytes of the head already sent */
	size_t out_len;		/* bytes queued */
	bool dead;		/* reap soon; ignore its input */
	bal_conn_role_t role;
	int64_t accepted;	/* monotonic us */
	bool spoke;		/* a message was received (authenticated) */
	bool bye;		/* BYE received */
	bool eof;		/* closed by the peer (end of stream, error) */
	bal_step_t *step;	/* with ROLE_SRUN/ROLE_AGENT */
	struct bal_agent *agent;	/* with ROLE_AGENT */
} bal_conn_t;

typedef struct bal_agent {
	bal_conn_t *conn;	/* NULL once gone */
	char *node;
	uint32_t node_idx;	/* index into step->nodes once indexed */
	uint32_t *ranks;
	size_t nranks;
	uint16_t handoff_port;	/* MigrateImageStore=local: its receiver */
	char *addr;		/* its address as seen here, for hand-offs */
	int64_t last_sample;	/* monotonic us of its last SAMPLE, 0: none */
	guint8 *restored;	/* per index of ranks: past smig_register()
				 * (restored or fresh), from RESTORED */
} bal_agent_t;

typedef enum {
	PHASE_PREPARE,		/* PREPARE sent, collecting COUNTs */
	PHASE_CAPTURE,		/* CAPTURE sent, collecting DONEs */
	PHASE_HANDOFF,		/* node-local store: images being handed off */
	PHASE_RELAUNCH,		/* RELAUNCH sent, waiting for the ACK */
} bal_phase_t;

typedef struct bal_capture {
	uint64_t gen;
	bal_phase_t phase;
	int64_t deadline;	/* monotonic us */
	smig_plan_t *plan;
	uint64_t *pause_at;	/* per rank */
	guint8 *counted;	/* per rank */
	guint8 *done;		/* per rank */
	uint32_t ncounted;
	uint32_t ndone;
	uint32_t nhandoff;	/* hand-offs not confirmed yet */
	guint8 *handed;		/* per rank: hand-off confirmed */
	char *hostfile;
	uint64_t good_before;	/* job's last_good when it started */
	uint64_t hist_id;	/* its history entry (moves only), 0: none */
	char *requeue_exclude;	/* job scope: requeue without these nodes
				 * ("node2,node3") once good; else NULL */
	bool evacuate;		/* ranks leave nodes (drain, down, fail,
				 * health): a failure sets evac_after */
} bal_capture_t;

/* One decision of a job and its outcome (QUERY: history). */
typedef struct bal_decision {
	uint64_t id;		/* job-wide sequence number, from 1 */
	int64_t time;		/* unix us */
	uint64_t gen;		/* capture generation, 0: none (advice) */
	uint32_t step_id;
	char *kind;		/* drain, auto, advise, request, requeue */
	char *ranks, *from, *to, *reason, *strategy, *why;
	char *outcome;		/* moved, advised, requeued, failed:REASON,
				 * pending */
	double predicted;	/* iter_before / iter_after - 1, NAN: none */
	double measured;	/* rate after / rate before - 1, NAN: none */
	double rate_before;	/* iterations/s when decided, 0: unknown */
	bool measuring;		/* moved; measured still to come */
	/* The engine's plan, for smig_link_est_observe(): */
	double link_bw;		/* bytes/s it was made with, 0: none */
	double iter_before, iter_after;	/* its seconds per iteration */
	double comm_before, comm_after;	/* their communication part */
} bal_decision_t;

struct bal_job {
	uint32_t id;
	uint32_t uid;		/* owner */
	smig_mode_t mode;
	uint64_t last_good;	/* last good generation */
	uint64_t last_tried;	/* last generation started */
	uint32_t moves;
	char *last_move;
	char *last_error;
	char *advice;		/* advise mode: what a move would be */
	int64_t retry_after;	/* monotonic us; 0: none */
	char *published;	/* last line handed to the host */
	uint32_t nsteps;
	smig_metrics_t *metrics;	/* NULL until the first SAMPLE */
	uint32_t sample_ms;	/* interval of the last SAMPLE */
	bool samples_new;	/* SAMPLEs since the last publish: the
				 * poll timer publishes the load summary */
	char *durable;		/* state file: job_durable() last synced */
	bool restored;		/* read from the state file at start */
	GQueue history;		/* of decision_t, oldest first, at most
				 * HISTORY_MAX */
	uint64_t hist_seq;	/* last decision_t id given */
	bool advice_forced;	/* advice is an evacuation (nodes to leave) */
	int64_t cooldown_until;	/* monotonic us: no balancing before */
	int64_t next_decide;	/* monotonic us: next balancing decision */
	uint64_t samples;	/* SAMPLE messages taken */
	double plan_link_bw;	/* bytes/s between nodes of the last plan
				 * of bal_step_plan_balance(), 0: none */
	uint64_t decided_samples;	/* samples at the last decision try */
	bool requeued;		/* pending again after a requeue (ours or
				 * Slurm's): kept until it runs again */
	bool released;		/* ... and its begin time is now */
	bool clean_requeue;	/* ... by a job-scope move of ours off
				 * drained or health-failed nodes (clean,
				 * job_release()): kept until released */
	/*
	 * Evacuations are never held by retry_after (doc/design.md,
	 * "Failures and back-off"): a failed or refused one is tried again
	 * after evac_after, or at once when the nodes to leave change.
	 */
	int64_t evac_after;	/* monotonic us; 0: none */
	char *evac_nodes;	/* nodes to leave ("a+b") of the last
				 * evacuation tried, NULL: none */
	char *skipped;		/* the last skipped action recorded
				 * ("kind:reason:nodes"), NULL: none since
				 * the last action */
};

struct bal_step {
	gint64 key;		/* job << 32 | step */
	uint32_t step_id;
	bal_job_t *job;
	bal_conn_t *srun;	/* NULL until HELLO_SRUN or once gone */
	bool registered;	/* HELLO_SRUN seen: fields below are set */
	smig_request_t req;
	uint32_t ntasks;
	char **nodes;		/* allocation, NULL-terminated */
	uint32_t nnodes;
	uint32_t *slots;	/* per node */
	GPtrArray *agents;	/* of agent_t, owned */
	bal_agent_t **rank_agent;	/* per rank, borrowed from agents */
	bal_capture_t *cap;
	bool committed;		/* ranks told to stop: step ending */
	int64_t next_periodic;	/* monotonic us of the next every= capture */
	uint32_t unheard;	/* captures in a row no rank answered */
	int64_t first_sample;	/* monotonic us of its first SAMPLE, 0: none */
	/* A relaunched step (the relaunch watchdog, restore_timeout()) */
	uint64_t restore_gen;	/* generation it restores, 0: a fresh step */
	uint32_t restore_try;	/* start of this relaunch, from 1 */
	int64_t restore_deadline;	/* monotonic us; 0: not watched */
	bool ready;		/* every rank was past smig_register() once
				 * (bal_step_ready(); that never goes back, its
				 * agents may) */
};

struct smig_balancer {
	const smig_conf_t *conf;
	smig_host_ops_t ops;
	smig_auth_t *auth;
	uint32_t admin_uid;
	uint16_t port;		/* bound port */

	GMainContext *ctx;
	GMainLoop *loop;
	GThread *thread;
	int listen_fd;		/* -1 until started */
	bal_poller_t *poller;	/* every fd of the balancer */
	bal_fd_t *listen_src;
	GSource *accept_pause;	/* pending listener resume, or NULL */
	uint32_t max_conns;	/* from RLIMIT_NOFILE at start */
	uint32_t max_conns_set;	/* smig_balancer_set_max_conns(), or 0 */
	GSource *timer;
	GSource *reaper;	/* pending idle reap, or NULL */
	GSource *release_timer;	/* fast release_pass() while a requeued
				 * job waits, or NULL */

	GHashTable *conns;	/* conn_t set, owned */
	GQueue dead;		/* conns to reap */
	size_t in_total;	/* sum of the conns' input buffers */
	GHashTable *jobs;	/* uint32 id -> job_t, owned */
	GHashTable *steps;	/* gint64 key -> step_t, owned */
	smig_link_est_t link;	/* the cost of a byte between nodes, learned
				 * from measured moves (in memory only) */
	GVariant *saved;	/* state file: what was last written */
	bool save_failed;	/* the last write failed (logged once) */
};

/* The balancer's clock: monotonic microseconds. */
static inline int64_t bal_now_us(void)
{
	return g_get_monotonic_time();
}

/* smig_balancer.c */
void bal_handle_msg(smig_balancer_t *b, bal_conn_t *c, const smig_msg_t *m);

/* smig_balancer_poller.c */
bal_poller_t *bal_poller_new(GMainContext *ctx, GError **error);
void bal_poller_free(bal_poller_t *p);
bal_fd_t *bal_fd_new(bal_poller_t *p, int fd, void (*io)(void *, GIOCondition),
		     void *data);
void bal_fd_set(bal_fd_t *fs, GIOCondition cond);
void bal_fd_free(bal_fd_t *fs);

/* smig_balancer_conn.c */
void bal_conn_send(bal_conn_t *c, smig_msg_type_t type, GVariant *body);
void bal_send_refused(smig_balancer_t *b, bal_conn_t *c, const smig_msg_t *msg,
		      uint32_t job_id, const char *reason);
void bal_send_agents(bal_step_t *s, smig_msg_type_t type, GVariant *body);
bool bal_decoded(smig_balancer_t *b, bal_conn_t *c, const smig_msg_t *m,
		 bool ok, GError **err);
void bal_conn_free(bal_conn_t *c);
void bal_conn_kill(bal_conn_t *c, const char *why);
void bal_listener_io(void *data, GIOCondition cond);
int bal_listen_on(const char *addr, uint16_t port, uint16_t *bound,
		  GError **error);
uint32_t bal_conns_from_rlimit(rlim_t *nofile);

/* smig_balancer_registry.c */
void bal_job_free(bal_job_t *j);
char *bal_job_line(const bal_job_t *j);
void bal_job_publish(smig_balancer_t *b, bal_job_t *j);
void bal_job_set_error(bal_job_t *j, uint64_t gen, const char *reason,
		       const char *ranks);
void bal_step_free(bal_step_t *s);
bal_step_t *bal_step_find(smig_balancer_t *b, uint32_t job_id,
			  uint32_t step_id);
void bal_step_remove(smig_balancer_t *b, bal_step_t *s);
bool bal_step_map_complete(const bal_step_t *s);
char *bal_ranks_text(const uint32_t *ranks, size_t n);
bool bal_step_store_local(const bal_step_t *s);
bal_agent_t *bal_step_agent_on(const bal_step_t *s, uint32_t node_idx);
bool bal_step_node_spare(const bal_step_t *s, uint32_t node_idx);
bool bal_uid_may(const smig_balancer_t *b, uint32_t uid, uint32_t owner);
bool bal_step_ready(bal_step_t *s);
void bal_on_hello_srun(smig_balancer_t *b, bal_conn_t *c, const smig_msg_t *m);
void bal_on_hello_agent(smig_balancer_t *b, bal_conn_t *c, const smig_msg_t *m);
bal_step_t *bal_bound_step(smig_balancer_t *b, bal_conn_t *c,
			   const smig_msg_t *m, bal_conn_role_t role,
			   uint32_t job_id, uint32_t step_id);
void bal_on_bye(smig_balancer_t *b, bal_conn_t *c, const smig_msg_t *m);
void bal_conn_detach(smig_balancer_t *b, bal_conn_t *c);

/* smig_balancer_capture.c */
void bal_capture_free(bal_capture_t *cap);
void bal_capture_abort(smig_balancer_t *b, bal_step_t *s, const char *reason,
		       const char *ranks);
void bal_capture_start_kind(smig_balancer_t *b, bal_step_t *s,
			    smig_plan_t *plan, const char *kind, bool evacuate);
void bal_capture_start(smig_balancer_t *b, bal_step_t *s, smig_plan_t *plan);
const char *bal_capture_reason(const char *kind, const smig_plan_t *plan);
void bal_capture_start_requeue(smig_balancer_t *b, bal_step_t *s,
			       smig_plan_t *plan, char *exclude,
			       const char *from);
bool bal_capture_poll(smig_balancer_t *b, bal_step_t *s, int64_t now);
bool bal_restore_poll(smig_balancer_t *b, bal_step_t *s, int64_t now);
smig_plan_t *bal_plan_stay(const char *reason);
void bal_restore_watch(smig_balancer_t *b, bal_step_t *s, uint64_t gen,
		       uint32_t try);
void bal_on_restored(smig_balancer_t *b, bal_conn_t *c, const smig_msg_t *m);
void bal_on_count(smig_balancer_t *b, bal_conn_t *c, const smig_msg_t *m);
void bal_on_done(smig_balancer_t *b, bal_conn_t *c, const smig_msg_t *m);
void bal_on_handoff(smig_balancer_t *b, bal_conn_t *c, const smig_msg_t *m);
void bal_on_relaunch_ack(smig_balancer_t *b, bal_conn_t *c,
			 const smig_msg_t *m);

/* smig_balancer_history.c */
void bal_decision_free(gpointer p);
char *bal_nodes_joined(const bal_step_t *s, const smig_plan_t *plan, bool to);
char *bal_plan_ranks(const smig_plan_t *plan);
char *bal_plan_move_text(const bal_step_t *s, const smig_plan_t *plan);
bal_decision_t *bal_history_add(bal_job_t *j, const bal_step_t *s,
				const char *kind, const smig_plan_t *plan,
				uint64_t gen, const char *outcome);
void bal_history_outcome(bal_job_t *j, const bal_capture_t *cap,
			 const char *outcome, const char *reason);
void bal_history_skip(bal_job_t *j, const bal_step_t *s, const char *kind,
		      const char *ranks, const char *from, const char *to,
		      const char *cause, const char *reason, const char *why);
void bal_history_measure(smig_balancer_t *b, bal_step_t *s);
GVariant *bal_history_variant(const bal_job_t *j);
void bal_job_advise(smig_balancer_t *b, bal_step_t *s, const smig_plan_t *plan,
		    bool forced);
void bal_history_relaunch(bal_job_t *j, const bal_step_t *s,
			  const char *missing, const char *outcome, char *why);

/* smig_balancer_jobscope.c */
void bal_step_node_health(const bal_step_t *s, smig_policy_node_t *nodes,
			  bool *health_only);
const char *bal_leave_reason(const bal_step_t *s,
			     const smig_policy_node_t *nodes,
			     const bool *health_only,
			     const uint32_t *rank_node);
char *bal_bad_nodes(const bal_step_t *s, const smig_policy_node_t *nodes,
		    const char *sep);
bool bal_job_scope_start(smig_balancer_t *b, bal_step_t *s,
			 const smig_policy_node_t *nodes, const char *reason,
			 const char **refusal);
bool bal_release_pass(smig_balancer_t *b);
void bal_release_timer_start(smig_balancer_t *b);

/* smig_balancer_trigger.c */
uint32_t bal_step_interval_ms(const smig_balancer_t *b, const bal_step_t *s);
smig_plan_t *bal_step_plan_balance(smig_balancer_t *b, bal_step_t *s,
				   const smig_policy_params_t *params,
				   int64_t now, char **why);
gboolean bal_poll_timer(gpointer data);
void bal_on_sample(smig_balancer_t *b, bal_conn_t *c, const smig_msg_t *m);

/* smig_balancer_request.c */
void bal_on_request(smig_balancer_t *b, bal_conn_t *c, const smig_msg_t *m);
void bal_on_query(smig_balancer_t *b, bal_conn_t *c, const smig_msg_t *m);
void bal_on_fate_query(smig_balancer_t *b, bal_conn_t *c,
		       const smig_msg_t *m);
void bal_on_fate_done(smig_balancer_t *b, bal_conn_t *c,
		      const smig_msg_t *m);
void bal_on_node_event(smig_balancer_t *b, bal_conn_t *c,
		       const smig_msg_t *m);

/* smig_balancer_state.c */
void bal_state_sync(smig_balancer_t *b);
void bal_job_sync(smig_balancer_t *b, bal_job_t *j);
bool bal_state_restore(smig_balancer_t *b, GError **error);

#endif /* SMIG_BALANCER_INT_H */
