/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_agent_store.c - the node agent's image store: verify, record as
 * good, hand off between nodes, wrap capture=signal checkpoint files
 * (see smig_agent_store.h)
 */
#include "smig_config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <glib.h>

#include "smig_agent.h"
#include "smig_agent_store.h"
#include "smig_log.h"
#include "smig_msgs.h"
#include "smig_partner.h"
#include "smig_wire.h"

#define CTX(st) SMIG_CTX_NODE((st)->job_id, (st)->step_id, (st)->node)

/*
 * dir_check - the job directory is still the one made at the step's start
 * (not replaced, e.g. by a symbolic link): checked before every image is
 * verified, written, received or recorded as good
 * RET 0, or a negative code with errbuf set (and logged)
 */
static int dir_check(const smig_agent_store_t *st, char *errbuf,
		     size_t errlen)
{
	int rc = smig_dir_check(st->dir, st->dir_id, errbuf, errlen);

	if (rc < 0)
		smig_cerror(CTX(st), "%s", errbuf);
	return rc;
}

/* job_owner - uid and gid of the job directory (the job's user) */
static void job_owner(const smig_agent_store_t *st, uint32_t *uid,
		      uint32_t *gid)
{
	struct stat s;

	if (stat(st->dir, &s) < 0) {
		*uid = *gid = (uint32_t) -1;
		return;
	}
	*uid = s.st_uid;
	*gid = s.st_gid;
}

int smig_agent_store_verify(const smig_agent_store_t *st, uint32_t rank,
			    uint64_t gen, uint64_t *bytes, char *errbuf,
			    size_t errlen)
{
	char path[PATH_MAX];
	smig_image_hdr_t hdr;
	int rc;

	rc = dir_check(st, errbuf, errlen);
	if (rc < 0)
		return rc;
	rc = smig_image_path(path, sizeof(path), st->dir, rank, gen);
	if (rc < 0) {
		snprintf(errbuf, errlen, "%s/rank%u.g%" PRIu64 ".img: path too long",
			 st->dir, rank, gen);
		return rc;
	}
	rc = smig_image_verify(path, &hdr, errbuf, errlen);
	if (rc < 0)
		return rc;
	if (hdr.job_id != st->job_id || hdr.rank != rank ||
	    hdr.generation != gen) {
		snprintf(errbuf, errlen, "%.200s: header says job %u rank %u generation %" PRIu64 ", expected job %u rank %u generation %" PRIu64,
			 path, hdr.job_id, hdr.rank, hdr.generation,
			 st->job_id, rank, gen);
		return SMIG_IMAGE_EINVAL;
	}
	*bytes = hdr.payload_len;
	return 0;
}

/*
 * partner_prune - retention of the partner copies this node holds: the
 * same generations as its own images (keep_from on), every rank of the step
 */
static void partner_prune(const smig_agent_store_t *st, uint64_t keep_from,
			  uint64_t gen)
{
	char pdir[PATH_MAX], errbuf[512] = "";
	uint32_t *all;
	struct stat s;
	int rc;

	if (smig_partner_dir(pdir, sizeof(pdir), st->dir) < 0 ||
	    lstat(pdir, &s) < 0 || !S_ISDIR(s.st_mode) || !st->ntasks)
		return;
	all = g_new(uint32_t, st->ntasks);
	for (uint32_t r = 0; r < st->ntasks; r++)
		all[r] = r;
	rc = smig_store_prune(pdir, all, st->ntasks, keep_from, gen, errbuf,
			      sizeof(errbuf));
	if (rc < 0)
		smig_cerror(CTX(st), "retention of partner copies: %s", errbuf);
	g_free(all);
}

void smig_agent_store_commit(const smig_agent_store_t *st, uint64_t gen)
{
	char errbuf[512] = "";
	uint64_t keep_from = gen;
	uint32_t uid, gid;
	int rc;

	if (dir_check(st, errbuf, sizeof(errbuf)) < 0) {
		smig_cerror(CTX(st), "generation=%" PRIu64 ": not recorded as good",
			    gen);
		return;
	}
	/* The job directory belongs to the job's user (make_job_dir()). */
	job_owner(st, &uid, &gid);
	rc = smig_store_commit(st->dir, gen, st->retain, uid, gid, &keep_from,
			       errbuf, sizeof(errbuf));
	if (rc < 0) {
		smig_cerror(CTX(st), "generation=%" PRIu64 ": cannot record it as good: %s",
			    gen, errbuf);
		return;
	}
	rc = smig_store_prune(st->dir, st->ranks, st->nranks, keep_from, gen,
			      errbuf, sizeof(errbuf));
	if (rc < 0)
		smig_cerror(CTX(st), "retention: %s", errbuf);
	else
		smig_cdebug(CTX(st), "generation %" PRIu64 " good, %d old image files deleted (keeping generations >= %" PRIu64 ")",
			    gen, rc, keep_from);
	partner_prune(st, keep_from, gen);
}

/* handoff_msg - a HANDOFF on a hand-off connection (not the balancer's) */
static bool handoff_msg(const smig_agent_store_t *st, int fd,
			const smig_msg_handoff_t *h, GError **error)
{
	smig_msg_t *msg = smig_msg_handoff_encode(h);
	bool ok = smig_wire_send(fd, st->auth, msg, error);

	smig_msg_free(msg);
	return ok;
}

/*
 * send_image - rank's image of gen to the agent of node to at addr:port,
 * as a hand-off or (partner) as a partner copy; see smig_agent_store_send()
 */
static int send_image(const smig_agent_store_t *st, uint32_t rank,
		      uint64_t gen, const char *to, const char *addr,
		      uint16_t port, bool partner, char *errbuf,
		      size_t errlen)
{
	int timeout = (int) MIN(st->timeout_ms, (uint32_t) G_MAXINT);
	struct timeval tv = { .tv_sec = timeout / 1000,
			      .tv_usec = timeout % 1000 * 1000 };
	smig_msg_handoff_t out, in = { 0 };
	smig_msg_t *reply = NULL;
	char path[PATH_MAX];
	GError *err = NULL;
	int32_t status = 0;
	struct stat s;
	int fd = -1;

	if (smig_image_path(path, sizeof(path), st->dir, rank, gen) < 0 ||
	    lstat(path, &s) < 0 || !S_ISREG(s.st_mode)) {
		snprintf(errbuf, errlen, "%s/rank%u.g%" PRIu64 ".img: not a regular file",
			 st->dir, rank, gen);
		return SMIG_IMAGE_EINVAL;
	}
	fd = smig_wire_connect(addr, port, SMIG_AGENT_CONNECT_TIMEOUT_MS,
			       &err);
	if (fd < 0) {
		snprintf(errbuf, errlen, "node %s at %s:%u: %s", to, addr,
			 port, err->message);
		status = -ECONNREFUSED;
		goto out;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	out = (smig_msg_handoff_t) {
		.job = st->job_id, .step = st->step_id, .gen = gen,
		.rank = rank,
		.bytes = (uint64_t) s.st_size, .has_bytes = true,
		.partner = partner, .has_partner = partner,
	};
	if (!handoff_msg(st, fd, &out, &err)) {
		snprintf(errbuf, errlen, "node %s: %s", to, err->message);
		status = -EPIPE;
		goto out;
	}
	status = smig_image_send(path, fd, (uint64_t) s.st_size, errbuf,
				 errlen);
	if (status)
		goto out;
	reply = smig_wire_recv(fd, st->auth, timeout, &err);
	if (reply && !smig_msg_handoff_decode(reply, &in, &err))
		g_clear_pointer(&reply, smig_msg_free);
	if (!reply || !in.has_status) {
		snprintf(errbuf, errlen, "node %s: no hand-off reply: %s", to,
			 err ? err->message : "not a HANDOFF with status");
		status = -EPROTO;
		goto out;
	}
	status = in.status;
	if (status && in.has_msg)
		snprintf(errbuf, errlen, "node %s: %s", to, in.msg);
	else if (!status)
		smig_cverbose(CTX(st), "rank=%u generation=%" PRIu64 ": %lld bytes sent to node %s%s",
			      rank, gen, (long long) s.st_size, to,
			      partner ? " (partner copy)" : "");
out:
	g_clear_error(&err);
	smig_msg_handoff_clear(&in);
	smig_msg_free(reply);
	if (fd >= 0)
		close(fd);
	return status;
}

int smig_agent_store_send(const smig_agent_store_t *st, uint32_t rank,
			  uint64_t gen, const char *to, const char *addr,
			  uint16_t port, char *errbuf, size_t errlen)
{
	return send_image(st, rank, gen, to, addr, port, false, errbuf,
			  errlen);
}

int smig_agent_store_partner_copy(const smig_agent_store_t *st,
				  uint64_t gen, const char *to,
				  const char *addr, uint16_t port)
{
	char errbuf[1024];
	int failed = 0;

	for (uint32_t i = 0; i < st->nranks; i++) {
		errbuf[0] = '\0';
		if (send_image(st, st->ranks[i], gen, to, addr, port, true,
			       errbuf, sizeof(errbuf)) == 0)
			continue;
		failed++;
		smig_cerror(CTX(st), "rank=%u generation=%" PRIu64 ": partner copy to node %s failed: %s",
			    st->ranks[i], gen, to, errbuf);
	}
	if (!failed)
		smig_cinfo(CTX(st), "generation=%" PRIu64 ": partner copies of %u ranks on node %s",
			   gen, st->nranks, to);
	return failed;
}

/*
 * partner_dir_make - "<dir>/partner" exists, is a directory (not a link)
 * owned by the job's user uid:gid, mode 0700; made if missing
 * OUT pdir - its path
 * RET 0, or a negative code with a message in errbuf
 */
static int partner_dir_make(const smig_agent_store_t *st, char *pdir,
			    size_t len, uint32_t uid, uint32_t gid,
			    char *errbuf, size_t errlen)
{
	struct stat s;
	int rc;

	if ((rc = smig_partner_dir(pdir, len, st->dir)) < 0) {
		snprintf(errbuf, errlen, "%.300s/%s: path too long", st->dir,
			 SMIG_PARTNER_SUBDIR);
		return rc;
	}
	if (mkdir(pdir, 0700) == 0) {
		if (uid != (uint32_t) -1 && geteuid() != uid &&
		    lchown(pdir, uid, gid) < 0) {
			rc = -errno;
			snprintf(errbuf, errlen, "%.300s: chown to %u:%u: %s",
				 pdir, uid, gid, g_strerror(-rc));
			rmdir(pdir);
			return rc;
		}
	} else if (errno != EEXIST) {
		rc = -errno;
		snprintf(errbuf, errlen, "%.300s: mkdir: %s", pdir,
			 g_strerror(-rc));
		return rc;
	}
	if (lstat(pdir, &s) < 0) {
		rc = -errno;
		snprintf(errbuf, errlen, "%.300s: %s", pdir, g_strerror(-rc));
		return rc;
	}
	if (!S_ISDIR(s.st_mode) ||
	    (uid != (uint32_t) -1 && s.st_uid != uid)) {
		snprintf(errbuf, errlen, "%.300s: not a directory of the job's user (uid %u): refused",
			 pdir, (unsigned) uid);
		return -EPERM;
	}
	return 0;
}

void smig_agent_store_receive(const smig_agent_store_t *st, int fd)
{
	char pdir[PATH_MAX];
	bool partner;
	struct timeval tv = { .tv_sec = SMIG_AGENT_RECV_TIMEOUT_MS / 1000 };
	uint32_t job, step, rank, uid, gid;
	uint64_t gen, bytes;
	char errbuf[512] = "";
	smig_msg_handoff_t in, out;
	smig_image_hdr_t hdr;
	GError *err = NULL;
	smig_msg_t *msg;
	int32_t status;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	msg = smig_wire_recv(fd, st->auth, SMIG_AGENT_RECV_TIMEOUT_MS, &err);
	if (!msg) {
		smig_cerror(CTX(st), "hand-off receiver: %s", err->message);
		g_error_free(err);
		return;
	}
	job_owner(st, &uid, &gid);
	if (!smig_msg_handoff_decode(msg, &in, NULL) || !in.has_bytes ||
	    in.job != st->job_id || in.gen == 0 ||
	    (msg->uid != 0 && msg->uid != uid)) {
		smig_cerror(CTX(st), "hand-off receiver: %s from uid %u is not a HANDOFF of this job (job u, step u, gen t > 0, rank u, bytes t) from root or the job's user: refused",
			    smig_msg_type_name(msg->type), msg->uid);
		smig_msg_handoff_clear(&in);
		smig_msg_free(msg);
		return;
	}
	job = in.job;
	step = in.step;
	gen = in.gen;
	rank = in.rank;
	bytes = in.bytes;
	partner = in.has_partner && in.partner;
	smig_msg_handoff_clear(&in);
	smig_msg_free(msg);
	status = dir_check(st, errbuf, sizeof(errbuf));
	if (!status && partner)
		status = partner_dir_make(st, pdir, sizeof(pdir), uid, gid,
					  errbuf, sizeof(errbuf));
	if (!status)
		status = smig_image_receive(partner ? pdir : st->dir, job, rank,
					    gen, fd, bytes, uid, gid, &hdr,
					    errbuf, sizeof(errbuf));
	if (status)
		smig_cerror(SMIG_CTX_NODE(job, step, st->node),
			    "rank=%u generation=%" PRIu64 ": %s refused: %s",
			    rank, gen, partner ? "partner copy" : "hand-off",
			    errbuf);
	else
		smig_cinfo(SMIG_CTX_NODE(job, step, st->node),
			   "rank=%u generation=%" PRIu64 ": %s received and verified (%" PRIu64 " bytes)",
			   rank, gen, partner ? "partner copy" : "image",
			   bytes);
	out = (smig_msg_handoff_t) {
		.job = job, .step = step, .gen = gen, .rank = rank,
		.status = status, .has_status = true,
		.msg = errbuf, .has_msg = true,
	};
	if (!handoff_msg(st, fd, &out, &err)) {
		smig_cerror(SMIG_CTX_NODE(job, step, st->node),
			    "rank=%u: hand-off reply: %s", rank, err->message);
		g_error_free(err);
	}
}

int smig_agent_store_partner_restore(const smig_agent_store_t *st)
{
	uint64_t gens[SMIG_STORE_MAX_GOOD];
	char pdir[PATH_MAX], errbuf[512] = "";
	size_t n = 0;
	int made = 0;
	struct stat s;

	if (smig_partner_dir(pdir, sizeof(pdir), st->dir) < 0 ||
	    lstat(pdir, &s) < 0 || !S_ISDIR(s.st_mode))
		return 0;
	if (dir_check(st, errbuf, sizeof(errbuf)) < 0)
		return 0;
	if (smig_store_good_read(st->dir, gens, &n, errbuf,
				 sizeof(errbuf)) < 0) {
		smig_cerror(CTX(st), "partner copies not used: %s", errbuf);
		return 0;
	}
	for (uint32_t i = 0; i < st->nranks; i++) {
		for (size_t g = 0; g < n; g++) {
			char path[PATH_MAX], copy[PATH_MAX];
			uint32_t rank = st->ranks[i];

			if (smig_image_path(path, sizeof(path), st->dir, rank,
					    gens[g]) < 0 ||
			    smig_image_path(copy, sizeof(copy), pdir, rank,
					    gens[g]) < 0 ||
			    lstat(path, &s) == 0 || errno != ENOENT ||
			    lstat(copy, &s) < 0 || !S_ISREG(s.st_mode))
				continue;
			/* The same file under the image's name: atomic. */
			if (link(copy, path) < 0) {
				int e = errno;

				if (e != EEXIST)
					smig_cerror(CTX(st), "rank=%u generation=%" PRIu64 ": cannot use the partner copy %s: link to %s: %s",
						    rank, gens[g], copy, path,
						    g_strerror(e));
				continue;
			}
			made++;
			smig_cinfo(CTX(st), "rank=%u generation=%" PRIu64 ": restoring from the partner copy %s",
				   rank, gens[g], copy);
		}
	}
	if (made) {
		int dfd = open(st->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
	}
	return made;
}

int smig_agent_store_ckpt_path(const smig_agent_store_t *st, char *buf,
			       size_t len, uint32_t rank)
{
	int n = snprintf(buf, len, "%s/rank%u.ckpt", st->dir, rank);

	return n < 0 || (size_t) n >= len ? -ENAMETOOLONG : 0;
}

int smig_agent_store_wrap(const smig_agent_store_t *st, uint32_t rank,
			  uint64_t gen, const char *ckpt, char *errbuf,
			  size_t errlen)
{
	smig_image_hdr_t hdr = { 0 };
	struct stat s, dst;
	int fd, rc = 0;

	rc = dir_check(st, errbuf, errlen);
	if (rc < 0)
		return rc;
	fd = open(ckpt, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		rc = -errno;
		snprintf(errbuf, errlen, "%s: open: %s", ckpt, g_strerror(-rc));
		return rc;
	}
	if (fstat(fd, &s) < 0 || stat(st->dir, &dst) < 0) {
		rc = -errno;
		snprintf(errbuf, errlen, "%s: stat: %s", ckpt, g_strerror(-rc));
		goto out_close;
	}
	if (!S_ISREG(s.st_mode) || s.st_uid != dst.st_uid) {
		snprintf(errbuf, errlen, "%s: not a regular file of the job's user (uid %u)",
			 ckpt, (unsigned) dst.st_uid);
		rc = -EPERM;
		goto out_close;
	}
	if ((uint64_t) s.st_size > SMIG_IMAGE_MAX_PAYLOAD) {
		snprintf(errbuf, errlen, "%s: %jd bytes, more than an image holds (%" PRIu64 ")",
			 ckpt, (intmax_t) s.st_size,
			 (uint64_t) SMIG_IMAGE_MAX_PAYLOAD);
		rc = -EFBIG;
		goto out_close;
	}
	hdr.job_id = st->job_id;
	hdr.step_id = st->step_id;
	hdr.rank = rank;
	hdr.nranks = st->ntasks;
	hdr.generation = gen;
	hdr.payload_len = s.st_size;
	hdr.created_ns = g_get_real_time() * 1000;
	g_strlcpy(hdr.tag, "signal", sizeof(hdr.tag));
	/* In the kernel, owned by the job's user: libsmig's file capture. */
	rc = smig_image_write_file(st->dir, &hdr, fd, ckpt, dst.st_uid,
				   dst.st_gid, NULL, 0, errbuf, errlen);
out_close:
	close(fd);
	return rc;
}

int smig_agent_store_restore_gen(const smig_agent_store_t *st,
				 const char *val, uint64_t *gen, char *errbuf,
				 size_t errlen)
{
	uint64_t gens[SMIG_STORE_MAX_GOOD];
	size_t n = 0;
	int rc;

	*gen = 0;
	if (!val || !val[0] || !strcmp(val, "none"))
		return 0;
	if (strcmp(val, "last")) {
		if (!g_ascii_string_to_unsigned(val, 10, 1, UINT64_MAX, gen,
						NULL)) {
			snprintf(errbuf, errlen, "SLURM_MIGRATE_RESTORE_GEN=%s: not a generation (a number >= 1, last or none)",
				 val);
			return -EINVAL;
		}
		return 0;
	}
	rc = smig_store_good_read(st->dir, gens, &n, errbuf, errlen);
	if (rc < 0)
		return rc;
	if (!n) {
		snprintf(errbuf, errlen, "SLURM_MIGRATE_RESTORE_GEN=last: no good generation recorded in %s/%s",
			 st->dir, SMIG_STORE_MANIFEST);
		return -ENOENT;
	}
	*gen = gens[n - 1];
	return 0;
}

int smig_agent_store_unwrap(const smig_agent_store_t *st, uint32_t rank,
			    uint64_t gen, const char *ckpt, uint32_t uid,
			    uint32_t gid, char *errbuf, size_t errlen)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	smig_image_hdr_t hdr;
	int ifd, fd, rc;

	if (smig_image_path(path, sizeof(path), st->dir, rank, gen) < 0 ||
	    snprintf(tmp, sizeof(tmp), "%s.restore", ckpt) >= (int) sizeof(tmp)) {
		snprintf(errbuf, errlen, "%s: path too long", ckpt);
		return -ENAMETOOLONG;
	}
	ifd = smig_image_open(path, &hdr, errbuf, errlen);
	if (ifd < 0)
		return ifd;
	if (hdr.job_id != st->job_id || hdr.rank != rank ||
	    hdr.generation != gen) {
		snprintf(errbuf, errlen, "%.200s: header says job %u rank %u generation %" PRIu64 ", expected job %u rank %u generation %" PRIu64,
			 path, hdr.job_id, hdr.rank, hdr.generation,
			 st->job_id, rank, gen);
		close(ifd);
		return SMIG_IMAGE_EINVAL;
	}
	if (unlink(tmp) < 0 && errno != ENOENT) {
		rc = -errno;
		snprintf(errbuf, errlen, "%s: unlink: %s", tmp, g_strerror(-rc));
		close(ifd);
		return rc;
	}
	fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		  0600);
	if (fd < 0 || fchown(fd, uid, gid) < 0)
		goto fail;
	/* In the kernel, checked against the header's sum as written. */
	rc = smig_image_extract_fd(ifd, &hdr, path, fd, tmp, errbuf, errlen);
	if (rc < 0)
		goto out;
	if (fsync(fd) < 0 || close(fd) < 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, ckpt) < 0)
		goto fail;
	close(ifd);
	return 0;
fail:
	rc = -errno;
	snprintf(errbuf, errlen, "%.1000s: writing %" PRIu64 " bytes of %.1000s: %s", tmp,
		 hdr.payload_len, path, g_strerror(-rc));
out:
	if (fd >= 0)
		close(fd);
	close(ifd);
	unlink(tmp);
	return rc;
}
