/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_balancer.c - the balancer service: its public API (new, start,
 * free), its thread and the dispatch of every message it receives
 *
 * Everything but smig_balancer_new/_start/_free runs on the balancer's
 * thread (its own GMainContext); those three run on the host's thread
 * while the balancer's is not running. State is therefore never locked.
 * The files of the balancer share smig_balancer_int.h (doc/design.md,
 * "Source layout").
 */
#include "smig_config.h"

#include <sys/resource.h>
#include <unistd.h>
#include <glib.h>

#include "smig_balancer_int.h"
#include "smig_error.h"

/* Is type one of the messages bal_handle_msg() dispatches? */
static bool accepted_type(smig_msg_type_t type)
{
	switch (type) {
	case SMIG_MSG_HELLO_SRUN:
	case SMIG_MSG_HELLO_AGENT:
	case SMIG_MSG_COUNT:
	case SMIG_MSG_DONE:
	case SMIG_MSG_RELAUNCH_ACK:
	case SMIG_MSG_HANDOFF:
	case SMIG_MSG_REQUEST:
	case SMIG_MSG_BYE:
	case SMIG_MSG_SAMPLE:
	case SMIG_MSG_RESTORED:
	case SMIG_MSG_QUERY:
	case SMIG_MSG_FATE_QUERY:
	case SMIG_MSG_FATE_DONE:
	case SMIG_MSG_NODE_EVENT:
		return true;
	default:
		return false;
	}
}

/*
 * bal_handle_msg - one authenticated message of a peer, to the handler of
 * its type; any other type is refused
 * IN m - the message (borrowed)
 */
void bal_handle_msg(smig_balancer_t *b, bal_conn_t *c, const smig_msg_t *m)
{
	uint32_t job_id = 0;
	GError *err = NULL;

	c->spoke = true;
	smig_debug2("recv %s from %s uid=%u", smig_msg_type_name(m->type),
		    c->peer, m->uid);
	/*
	 * Every message the balancer accepts follows its schema before a
	 * handler sees it: handlers decode into the typed struct and never
	 * meet a missing or mistyped field. The job id, if readable, only
	 * gives the log line its context.
	 */
	if (accepted_type(m->type) && !smig_msgs_check(m, &err)) {
		smig_msg_get_u32(m, "job", &job_id);
		bal_send_refused(b, c, m, job_id, err->message);
		g_error_free(err);
		return;
	}
	switch (m->type) {
	case SMIG_MSG_HELLO_SRUN:
		bal_on_hello_srun(b, c, m);
		break;
	case SMIG_MSG_HELLO_AGENT:
		bal_on_hello_agent(b, c, m);
		break;
	case SMIG_MSG_COUNT:
		bal_on_count(b, c, m);
		break;
	case SMIG_MSG_DONE:
		bal_on_done(b, c, m);
		break;
	case SMIG_MSG_RELAUNCH_ACK:
		bal_on_relaunch_ack(b, c, m);
		break;
	case SMIG_MSG_HANDOFF:
		bal_on_handoff(b, c, m);
		break;
	case SMIG_MSG_REQUEST:
		bal_on_request(b, c, m);
		break;
	case SMIG_MSG_BYE:
		bal_on_bye(b, c, m);
		break;
	case SMIG_MSG_SAMPLE:
		bal_on_sample(b, c, m);
		break;
	case SMIG_MSG_RESTORED:
		bal_on_restored(b, c, m);
		break;
	case SMIG_MSG_QUERY:
		bal_on_query(b, c, m);
		break;
	case SMIG_MSG_FATE_QUERY:
		bal_on_fate_query(b, c, m);
		break;
	case SMIG_MSG_FATE_DONE:
		bal_on_fate_done(b, c, m);
		break;
	case SMIG_MSG_NODE_EVENT:
		bal_on_node_event(b, c, m);
		break;
	default:
		smig_msg_get_u32(m, "job", &job_id);
		bal_send_refused(b, c, m, job_id,
				 "not a message the balancer accepts");
		break;
	}
}

/*
 * smig_balancer_new - a balancer, not yet listening
 * See smig_balancer.h. RET caller frees with smig_balancer_free()
 */
smig_balancer_t *smig_balancer_new(const smig_conf_t *conf,
				   const smig_host_ops_t *ops,
				   smig_auth_t *auth, uint32_t admin_uid)
{
	smig_balancer_t *b = g_new0(smig_balancer_t, 1);

	b->conf = conf;
	b->ops = *ops;
	b->auth = auth;
	b->admin_uid = admin_uid;
	smig_link_est_init(&b->link, (double) conf->link_bw);
	b->listen_fd = -1;
	b->ctx = g_main_context_new();
	b->loop = g_main_loop_new(b->ctx, FALSE);
	b->conns = g_hash_table_new_full(NULL, NULL,
					 (GDestroyNotify) bal_conn_free, NULL);
	g_queue_init(&b->dead);
	b->jobs = g_hash_table_new_full(NULL, NULL, NULL,
					(GDestroyNotify) bal_job_free);
	b->steps = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL,
					 (GDestroyNotify) bal_step_free);
	return b;
}

static gpointer balancer_thread(gpointer data)
{
	smig_balancer_t *b = data;

	g_main_context_push_thread_default(b->ctx);
	g_main_loop_run(b->loop);
	g_main_context_pop_thread_default(b->ctx);
	return NULL;
}

/*
 * smig_balancer_start - bind the port and start the thread
 * RET false with error set (names addr:port) if the port cannot be bound
 */
bool smig_balancer_start(smig_balancer_t *b, GError **error)
{
	GError *err = NULL;
	rlim_t nofile;

	if (b->thread) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_STATE,
			    "balancer already started");
		return false;
	}
	if (!bal_state_restore(b, error))
		return false;
	b->max_conns = bal_conns_from_rlimit(&nofile);
	if (b->max_conns_set && b->max_conns_set < b->max_conns)
		b->max_conns = b->max_conns_set;
	b->listen_fd = bal_listen_on(b->conf->balancer_addr, b->conf->port,
				     &b->port, error);
	if (b->listen_fd < 0)
		return false;
	b->poller = bal_poller_new(b->ctx, error);
	if (!b->poller)
		return false;
	b->listen_src = bal_fd_new(b->poller, b->listen_fd, bal_listener_io, b);
	if (!b->listen_src) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_IO,
			    "cannot watch the listening socket of port %u",
			    b->port);
		return false;
	}
	b->timer = g_timeout_source_new(smig_conf_tick_ms(b->conf));
	g_source_set_callback(b->timer, bal_poll_timer, b, NULL);
	g_source_attach(b->timer, b->ctx);

	b->thread = g_thread_try_new("smig-balancer", balancer_thread, b,
				     &err);
	if (!b->thread) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_IO,
			    "cannot start the balancer thread: %s",
			    err->message);
		g_error_free(err);
		return false;
	}
	smig_info("listening on port %u, at most %u connections (RLIMIT_NOFILE=%llu)",
		  b->port, b->max_conns, (unsigned long long) nofile);
	return true;
}

/*
 * smig_balancer_set_max_conns - lower the connection cap (tests)
 * See smig_balancer.h.
 */
void smig_balancer_set_max_conns(smig_balancer_t *b, uint32_t n)
{
	b->max_conns_set = n;
}

/*
 * smig_balancer_port - the TCP port the balancer listens on (useful when
 * MigratePort was 0, in tests); 0 before smig_balancer_start()
 */
uint16_t smig_balancer_port(const smig_balancer_t *b)
{
	return b->port;
}

static gboolean quit_loop(gpointer data)
{
	g_main_loop_quit(data);
	return G_SOURCE_REMOVE;
}

/*
 * smig_balancer_free - stop and join the thread, close every connection
 * NULL is a no-op; safe after a failed or missing smig_balancer_start().
 */
void smig_balancer_free(smig_balancer_t *b)
{
	if (!b)
		return;
	if (b->thread) {
		/* Quit from inside the loop: a quit before run() is lost. */
		GSource *q = g_idle_source_new();

		g_source_set_priority(q, G_PRIORITY_HIGH);
		g_source_set_callback(q, quit_loop, b->loop, NULL);
		g_source_attach(q, b->ctx);
		g_source_unref(q);
		g_thread_join(b->thread);
	}
	g_queue_clear(&b->dead);
	if (b->reaper) {
		g_source_destroy(b->reaper);
		g_source_unref(b->reaper);
	}
	if (b->accept_pause) {
		g_source_destroy(b->accept_pause);
		g_source_unref(b->accept_pause);
	}
	if (b->release_timer) {
		g_source_destroy(b->release_timer);
		g_source_unref(b->release_timer);
	}
	/* Steps first: they point at conns only to detach them. */
	g_hash_table_destroy(b->steps);
	g_hash_table_destroy(b->jobs);
	g_hash_table_destroy(b->conns);
	bal_fd_free(b->listen_src);
	if (b->listen_fd >= 0)
		close(b->listen_fd);
	bal_poller_free(b->poller);
	if (b->timer) {
		g_source_destroy(b->timer);
		g_source_unref(b->timer);
	}
	if (b->saved)
		g_variant_unref(b->saved);
	g_main_loop_unref(b->loop);
	g_main_context_unref(b->ctx);
	g_free(b);
}
