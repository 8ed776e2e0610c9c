/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_balancer_poller.c - one epoll set behind one GSource: the
 * balancer's I/O engine, apart from its protocol
 */
#include "smig_config.h"

#include <errno.h>
#include <sys/epoll.h>
#include <unistd.h>
#include <glib.h>

#include "smig_balancer_int.h"
#include "smig_error.h"

#define POLL_BATCH	256		/* ready fds handled per wake-up */

static uint32_t cond_to_epoll(GIOCondition cond)
{
	return (cond & G_IO_IN ? EPOLLIN : 0) |
	       (cond & G_IO_OUT ? EPOLLOUT : 0);
}

static GIOCondition epoll_to_cond(uint32_t ev)
{
	return (ev & EPOLLIN ? G_IO_IN : 0) | (ev & EPOLLOUT ? G_IO_OUT : 0) |
	       (ev & EPOLLHUP ? G_IO_HUP : 0) | (ev & EPOLLERR ? G_IO_ERR : 0);
}

/* Level-triggered, like poll(): what is left of a batch comes next time. */
static gboolean fd_poller_dispatch(GSource *src, GSourceFunc cb,
				   gpointer data)
{
	bal_poller_t *p = (bal_poller_t *) src;
	struct epoll_event ev[POLL_BATCH];
	int n;

	n = epoll_wait(p->epfd, ev, POLL_BATCH, 0);
	if (n < 0 && errno != EINTR)
		smig_error("epoll_wait: %s", g_strerror(errno));
	p->dispatching = true;
	for (int i = 0; i < n; i++) {
		bal_fd_t *fs = ev[i].data.ptr;

		/* Freed by an earlier callback of this batch: skip it. */
		if (fs->io)
			fs->io(fs->data, epoll_to_cond(ev[i].events));
	}
	p->dispatching = false;
	g_slist_free_full(p->graveyard, g_free);
	p->graveyard = NULL;
	return G_SOURCE_CONTINUE;
}

static void fd_poller_finalize(GSource *src)
{
	bal_poller_t *p = (bal_poller_t *) src;

	g_slist_free_full(p->graveyard, g_free);
	if (p->epfd >= 0)
		close(p->epfd);
}

static GSourceFuncs fd_poller_funcs = {
	.dispatch = fd_poller_dispatch,
	.finalize = fd_poller_finalize,
};

/* RET new poller attached to ctx, or NULL with error set */
bal_poller_t *bal_poller_new(GMainContext *ctx, GError **error)
{
	bal_poller_t *p;
	int epfd = epoll_create1(EPOLL_CLOEXEC);

	if (epfd < 0) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_IO,
			    "epoll_create1: %s", g_strerror(errno));
		return NULL;
	}
	p = (bal_poller_t *) g_source_new(&fd_poller_funcs,
					  sizeof(bal_poller_t));
	p->epfd = epfd;
	g_source_add_unix_fd(&p->src, epfd, G_IO_IN);
	g_source_attach(&p->src, ctx);
	return p;
}

/* bal_poller_free - detach and free a poller; NULL: no-op */
void bal_poller_free(bal_poller_t *p)
{
	if (!p)
		return;
	g_source_destroy(&p->src);
	g_source_unref(&p->src);
}

/*
 * bal_fd_new - watch fd for input in poller p
 * RET new source, or NULL if epoll refuses the fd (logged); caller frees
 *     with bal_fd_free()
 */
bal_fd_t *bal_fd_new(bal_poller_t *p, int fd, void (*io)(void *, GIOCondition),
		     void *data)
{
	bal_fd_t *fs = g_new0(bal_fd_t, 1);
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = fs };

	fs->p = p;
	fs->fd = fd;
	fs->io = io;
	fs->data = data;
	if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		smig_error("epoll_ctl(ADD, fd %d): %s", fd, g_strerror(errno));
		g_free(fs);
		return NULL;
	}
	return fs;
}

/* bal_fd_set - the conditions to watch (0: none for now) */
void bal_fd_set(bal_fd_t *fs, GIOCondition cond)
{
	struct epoll_event ev = { .events = cond_to_epoll(cond),
				  .data.ptr = fs };

	if (epoll_ctl(fs->p->epfd, EPOLL_CTL_MOD, fs->fd, &ev) < 0)
		smig_error("epoll_ctl(MOD, fd %d): %s", fs->fd,
			   g_strerror(errno));
}

/* bal_fd_free - stop watching (before the fd is closed); NULL: no-op */
void bal_fd_free(bal_fd_t *fs)
{
	if (!fs)
		return;
	epoll_ctl(fs->p->epfd, EPOLL_CTL_DEL, fs->fd, NULL);
	fs->io = NULL;
	if (fs->p->dispatching)
		fs->p->graveyard = g_slist_prepend(fs->p->graveyard, fs);
	else
		g_free(fs);
}
