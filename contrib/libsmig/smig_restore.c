/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_restore.c - libsmig's restore: verify this rank's images, agree with
 * every other rank on one generation (PMIx_Put + fence), hand its payload
 * to the restore callback, whole or streamed (smig_read())
 *
 * Runs in the thread that calls smig_register(); doc/design.md, "The
 * capture protocol" and doc/images.md.
 */
#include "smig_config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pmix.h>
#include <xxhash.h>

#include "smig_int.h"

/* Newest generations considered when falling back (one bit each). */
#define FALLBACK_GENS		64

/* Keys of the restore agreement (PMIx_Put + fence, not events). */
#define KEY_RESTORE_GEN	"smig.restore.gen"
#define KEY_RESTORE_R1	"smig.restore.ok1"
#define KEY_RESTORE_R2	"smig.restore.ok2"
#define KEY_RESTORE_R3	"smig.restore.ok3"

/* Round 3 (smig_restore()): what failed on a rank, as bits cleared in the
 * AND of every rank's mask (so the AND is the OR of the failures). */
#define OUTCOME_IMAGE_BAD	UINT64_C(1)	/* image unreadable or changed */
#define OUTCOME_APP_FAILED	UINT64_C(2)	/* the restore callback failed */

/*
 * check_header - the image belongs to this rank, generation and application
 * RET true, or false with a message in err
 */
static bool check_header(smig_lib_t *st, const smig_image_hdr_t *h,
			 uint64_t gen, char *err, size_t errlen)
{
	if (h->job_id != st->job_id)
		snprintf(err, errlen, "job %u in header, this is job %u",
			 h->job_id, st->job_id);
	else if (h->rank != st->me.rank)
		snprintf(err, errlen, "rank %u in header, expected %u",
			 h->rank, st->me.rank);
	else if (h->generation != gen)
		snprintf(err, errlen, "generation %" PRIu64 " in header, expected %" PRIu64,
			 h->generation, gen);
	else if (h->nranks != st->nranks)
		snprintf(err, errlen, "captured with %u ranks, this step has %u",
			 h->nranks, st->nranks);
	else if (strcmp(h->tag, st->tag))
		snprintf(err, errlen, "tag \"%s\" in header, application registered \"%s\"",
			 h->tag, st->tag);
	else
		return true;
	return false;
}

/*
 * load_image - read (payload != NULL) or verify one image of this rank
 * OUT hdr     - header, on success
 * OUT payload - new buffer, caller frees with free(); NULL to only verify
 * IN  quiet_missing - no message if the file does not exist
 * RET true, or false with a message logged
 */
static bool load_image(smig_lib_t *st, uint64_t gen, smig_image_hdr_t *hdr,
		       void **payload, bool quiet_missing)
{
	char path[4096], err[ERRBUF_LEN], why[ERRBUF_LEN];
	int rc;

	rc = smig_image_path(path, sizeof(path), st->image_dir,
			     st->me.rank, gen);
	if (rc) {
		smig_log("image path for generation %" PRIu64 " in %s: %s",
			 gen, st->image_dir, smig_image_strerror(rc));
		return false;
	}
	err[0] = '\0';
	if (payload)
		rc = smig_image_read(path, hdr, payload, err, sizeof(err));
	else
		rc = smig_image_verify(path, hdr, err, sizeof(err));
	if (rc) {
		/* smig_image's messages name the path and generation. */
		if (quiet_missing && rc == -ENOENT)
			;
		else if (err[0])
			smig_log("%s", err);
		else
			smig_log("image %s (generation %" PRIu64 "): %s",
				 path, gen, smig_image_strerror(rc));
		return false;
	}
	if (!check_header(st, hdr, gen, why, sizeof(why))) {
		smig_log("image %s (generation %" PRIu64 "): %s", path, gen,
			 why);
		if (payload) {
			free(*payload);
			*payload = NULL;
		}
		return false;
	}
	return true;
}

/*
 * smig_lib_read_manifest - the good generations the store recorded (st->good);
 * a bad manifest is reported and ignored: every image is verified anyway.
 */
void smig_lib_read_manifest(smig_lib_t *st)
{
	char err[ERRBUF_LEN] = "";

	if (smig_store_good_read(st->image_dir, st->good, &st->ngood,
				 err, sizeof(err)) < 0)
		smig_log("%s: ignored, falling back to any generation whose images verify on every rank",
			 err);
}

/* known_good - gen is in the manifest, or there is no manifest */
static bool known_good(smig_lib_t *st, uint64_t gen)
{
	if (!st->ngood)
		return true;
	for (size_t i = 0; i < st->ngood; i++)
		if (st->good[i] == gen)
			return true;
	return false;
}

/*
 * agree - AND of every rank's mask, through PMIx_Put + fence + PMIx_Get
 * (smig_chan_agree() without PMIx)
 * IN  key  - distinct per round (a key is put once)
 * IN  gen  - SLURM_MIGRATE_RESTORE_GEN, checked to be the same everywhere
 * IN  mine - bit i: generation gen - i can be restored by this rank
 * OUT all  - bits set on every rank
 * RET true, or false with a message logged (all ranks must then fail)
 */
static bool agree(smig_lib_t *st, const char *key, uint64_t gen,
		  uint64_t mine, uint64_t *all)
{
	pmix_info_t *info;
	pmix_value_t v, *got;
	pmix_proc_t p;
	pmix_status_t rc;
	bool yes = true;
	uint32_t r;

	*all = mine;
	if (st->nranks == 1)
		return true;
	/* No PMIx in the rank (MPICH): the same through PMI-1. */
	if (st->chan)
		return smig_chan_agree(st, key, gen, mine, all);
	PMIX_VALUE_LOAD(&v, &gen, PMIX_UINT64);
	rc = PMIx_Put(PMIX_GLOBAL, KEY_RESTORE_GEN, &v);
	PMIX_VALUE_DESTRUCT(&v);
	if (rc == PMIX_SUCCESS) {
		PMIX_VALUE_LOAD(&v, &mine, PMIX_UINT64);
		rc = PMIx_Put(PMIX_GLOBAL, key, &v);
		PMIX_VALUE_DESTRUCT(&v);
	}
	if (rc == PMIX_SUCCESS)
		rc = PMIx_Commit();
	if (rc != PMIX_SUCCESS) {
		smig_log("restore agreement: PMIx_Put/Commit of %s failed: %s",
			 key, PMIx_Error_string(rc));
		return false;
	}
	PMIX_INFO_CREATE(info, 1);
	PMIX_INFO_LOAD(&info[0], PMIX_COLLECT_DATA, &yes, PMIX_BOOL);
	/* NULL procs: every rank of our namespace. */
	rc = PMIx_Fence(NULL, 0, info, 1);
	PMIX_INFO_FREE(info, 1);
	if (rc != PMIX_SUCCESS) {
		smig_log("restore agreement: PMIx_Fence failed: %s",
			 PMIx_Error_string(rc));
		return false;
	}
	for (r = 0; r < st->nranks; r++) {
		uint64_t theirs;

		PMIX_LOAD_PROCID(&p, st->me.nspace, r);
		got = NULL;
		rc = PMIx_Get(&p, KEY_RESTORE_GEN, NULL, 0, &got);
		if (rc != PMIX_SUCCESS || !got || got->type != PMIX_UINT64)
			goto get_failed;
		theirs = got->data.uint64;
		PMIX_VALUE_RELEASE(got);
		if (theirs != gen && !theirs) {
			smig_log("restore agreement: rank %u cannot restore (it found no generation to restore): neither can this rank",
				 r);
			return false;
		}
		if (theirs != gen && gen) {
			smig_log("restore agreement: rank %u restores generation %" PRIu64 ", this rank %" PRIu64 ": SLURM_MIGRATE_RESTORE_GEN differs between ranks",
				 r, theirs, gen);
			return false;
		}
		if (theirs != gen)
			return false;	/* this rank refused, and said why */
		got = NULL;
		rc = PMIx_Get(&p, key, NULL, 0, &got);
		if (rc != PMIX_SUCCESS || !got || got->type != PMIX_UINT64)
			goto get_failed;
		*all &= got->data.uint64;
		PMIX_VALUE_RELEASE(got);
	}
	return true;

get_failed:
	smig_log("restore agreement: PMIx_Get of rank %u failed: %s", r,
		 rc != PMIX_SUCCESS ? PMIx_Error_string(rc) : "not a uint64");
	if (got)
		PMIX_VALUE_RELEASE(got);
	return false;
}

struct smig_reader {
	bool open;		/* inside the streaming restore callback */
	int fd;
	const char *path;
	const smig_image_hdr_t *hdr;	/* the verified header */
	smig_lib_t *st;
	uint64_t left;		/* payload bytes not read yet */
	uint64_t hash;		/* the verified payload XXH3-64 */
	XXH3_state_t *xx;
	int err;		/* first error, returned from then on */
	bool read_some;		/* smig_read() gave bytes */
	bool file_made;		/* smig_restore_path(): file is ours */
	char file[4096];	/* "<dir>/rank<R>.g<G>.img.tmp.restore" */
};

/* reader_fill - read exactly len bytes (len <= r->left) and checksum them */
static int reader_fill(smig_reader_t *r, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(r->fd, (char *) buf + got, len - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			smig_log("%s: read: %s", r->path, strerror(errno));
			return SMIG_ERR_IO;
		}
		if (n == 0) {
			smig_log("%s: truncated after it was verified (%" PRIu64 " payload bytes missing)",
				 r->path, r->left - got);
			return SMIG_ERR_IMAGE;
		}
		got += n;
	}
	XXH3_64bits_update(r->xx, buf, len);
	r->left -= len;
	if (!r->left && XXH3_64bits_digest(r->xx) != r->hash) {
		smig_log("%s: payload changed after it was verified (checksum mismatch)",
			 r->path);
		return SMIG_ERR_IMAGE;
	}
	return SMIG_OK;
}

SMIG_EXPORT int64_t smig_read(smig_reader_t *r, void *buf, size_t len)
{
	int rc;

	if (!r || !r->open) {
		smig_log("smig_read() outside a streaming restore callback");
		return SMIG_ERR_STATE;
	}
	if (r->err)
		return r->err;
	if (r->file_made) {
		smig_log("smig_read() after smig_restore_path(): the payload is in %s",
			 r->file);
		return SMIG_ERR_STATE;
	}
	if (!buf && len) {
		smig_log("smig_read: buf is NULL");
		return SMIG_ERR_INVAL;
	}
	if (len > r->left)
		len = r->left;
	if (!len)
		return 0;
	rc = reader_fill(r, buf, len);
	if (rc) {
		r->err = rc;
		return rc;
	}
	r->read_some = true;
	return (int64_t) len;
}

SMIG_EXPORT const char *smig_restore_path(smig_reader_t *r)
{
	char err[ERRBUF_LEN] = "";
	int fd, rc, n;

	if (!r || !r->open) {
		smig_log("smig_restore_path() outside a streaming restore callback");
		return NULL;
	}
	if (r->file_made)
		return r->file;
	if (r->err)
		return NULL;
	if (r->read_some) {
		smig_log("smig_restore_path() after smig_read(): the image is being read");
		return NULL;
	}
	n = snprintf(r->file, sizeof(r->file),
		     "%s/rank%u.g%" PRIu64 ".img.tmp.restore", r->st->image_dir,
		     (unsigned) r->st->me.rank, r->hdr->generation);
	if (n < 0 || (size_t) n >= sizeof(r->file)) {
		smig_log("smig_restore_path: %s: path too long",
			 r->st->image_dir);
		r->err = SMIG_ERR_IO;
		return NULL;
	}
	if ((unlink(r->file) < 0 && errno != ENOENT) ||
	    (fd = open(r->file, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW |
		       O_CLOEXEC, 0600)) < 0) {
		smig_log("smig_restore_path: %s: %s", r->file, strerror(errno));
		r->err = SMIG_ERR_IO;
		return NULL;
	}
	/* In the kernel, and checked against the verified sum as written. */
	rc = smig_image_extract_fd(r->fd, r->hdr, r->path, fd, r->file, err,
				   sizeof(err));
	close(fd);
	if (rc) {
		smig_log("%s", err[0] ? err : smig_image_strerror(rc));
		unlink(r->file);
		r->err = rc == SMIG_IMAGE_ESUM || rc == SMIG_IMAGE_ETRUNC ?
			 SMIG_ERR_IMAGE : SMIG_ERR_IO;
		return NULL;
	}
	r->left = 0;
	r->file_made = true;
	return r->file;
}

/*
 * restore_stream - run the streaming restore callback on the verified
 * image of gen (hdr); the header is read again and must be the verified one
 * OUT app_rc - what the callback returned (0 if it did not run)
 * RET SMIG_OK, or SMIG_ERR_* when the image could not be read or checked
 */
static int restore_stream(smig_lib_t *st, uint64_t gen,
			  const smig_image_hdr_t *hdr, int *app_rc)
{
	unsigned char head[SMIG_IMAGE_HEADER_SIZE], buf[65536];
	char path[4096], err[ERRBUF_LEN] = "";
	smig_reader_t r = { .fd = -1, .path = path, .hdr = hdr, .st = st };
	smig_image_hdr_t now;
	ssize_t n;
	int rc;

	if (smig_image_path(path, sizeof(path), st->image_dir,
			    st->me.rank, gen))
		return SMIG_ERR_IMAGE;
	r.fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (r.fd < 0) {
		smig_log("%s: open: %s", path, strerror(errno));
		return SMIG_ERR_IO;
	}
	do {
		n = pread(r.fd, head, sizeof(head), 0);
	} while (n < 0 && errno == EINTR);
	if (n != (ssize_t) sizeof(head) ||
	    smig_image_decode_header(head, sizeof(head), &now, err,
				     sizeof(err)) ||
	    now.payload_len != hdr->payload_len ||
	    now.payload_hash != hdr->payload_hash ||
	    now.generation != hdr->generation || now.rank != hdr->rank) {
		smig_log("%s: header changed after the image was verified%s%s",
			 path, err[0] ? ": " : "", err);
		close(r.fd);
		return SMIG_ERR_IMAGE;
	}
	if (lseek(r.fd, SMIG_IMAGE_HEADER_SIZE, SEEK_SET) < 0 ||
	    !(r.xx = XXH3_createState()) || XXH3_64bits_reset(r.xx) != XXH_OK) {
		smig_log("%s: cannot start reading the payload", path);
		if (r.xx)
			XXH3_freeState(r.xx);
		close(r.fd);
		return SMIG_ERR_IO;
	}
	r.left = hdr->payload_len;
	r.hash = hdr->payload_hash;
	/* An empty payload: the checksum of nothing is checked here. */
	if (!r.left && XXH3_64bits_digest(r.xx) != r.hash)
		r.err = SMIG_ERR_IMAGE;
	*app_rc = 0;
	if (!r.err) {
		r.open = true;
		*app_rc = st->restore_rd(&r, hdr->payload_len, st->arg);
		r.open = false;
	}
	/* The file of smig_restore_path() lives as long as the callback. */
	if (r.file_made && unlink(r.file) < 0 && errno != ENOENT)
		smig_log("%s: cannot remove: %s", r.file, strerror(errno));
	/* What the callback left unread is checked all the same. */
	while (!*app_rc && !r.err && r.left) {
		size_t len = r.left < sizeof(buf) ? r.left : sizeof(buf);

		r.err = reader_fill(&r, buf, len);
	}
	rc = r.err;
	XXH3_freeState(r.xx);
	close(r.fd);
	return rc;
}

/*
 * holds_regions - the payload is a region container (smig_region.h), which
 * a restore callback must not get as its bytes
 */
static bool holds_regions(const void *payload, uint64_t len)
{
	const unsigned char *p = payload;

	return len >= SMIG_REGION_DIR_SIZE &&
	       !memcmp(p, SMIG_REGION_MAGIC, sizeof(SMIG_REGION_MAGIC)) &&
	       p[8] == SMIG_REGION_VERSION && !p[9] && !p[10] && !p[11];
}

/*
 * restore_regions - the verified image of gen (hdr) into the registered
 * regions (smig_region_restore_fd(): names and sizes checked before any
 * byte is read, the payload checksummed as read), then the callback's
 * bytes to the restore callback, if one is registered
 * OUT app_rc - what the callback returned (0 if none ran)
 * RET SMIG_OK, or SMIG_ERR_IMAGE / SMIG_ERR_IO (logged)
 */
static int restore_regions(smig_lib_t *st, uint64_t gen,
			   const smig_image_hdr_t *hdr, int *app_rc)
{
	smig_region_t regs[SMIG_REGION_MAX];
	char path[4096], err[ERRBUF_LEN] = "";
	smig_image_hdr_t now;
	void *app = NULL;
	uint64_t app_len = 0;
	size_t n;
	int fd, rc;

	*app_rc = 0;
	if (smig_image_path(path, sizeof(path), st->image_dir, st->me.rank,
			    gen))
		return SMIG_ERR_IMAGE;
	fd = smig_image_open(path, &now, err, sizeof(err));
	if (fd < 0) {
		smig_log("%s", err[0] ? err : smig_image_strerror(fd));
		return fd == -ENOMEM ? SMIG_ERR_IO : SMIG_ERR_IMAGE;
	}
	if (now.payload_len != hdr->payload_len ||
	    now.payload_hash != hdr->payload_hash ||
	    now.generation != hdr->generation || now.rank != hdr->rank) {
		smig_log("%s: header changed after the image was verified",
			 path);
		close(fd);
		return SMIG_ERR_IMAGE;
	}
	pthread_mutex_lock(&st->lock);
	n = st->nregions;
	memcpy(regs, st->regions, n * sizeof(regs[0]));
	pthread_mutex_unlock(&st->lock);
	rc = smig_region_restore_fd(fd, &now, path, regs, n, &app, &app_len,
				    err, sizeof(err));
	close(fd);
	if (rc) {
		smig_log("%s", err[0] ? err : smig_image_strerror(rc));
		return rc == -ENOMEM ? SMIG_ERR_IO : SMIG_ERR_IMAGE;
	}
	if (st->restore)
		*app_rc = st->restore(app ? app : (const void *) "", app_len,
				      st->arg);
	free(app);
	return SMIG_OK;
}

/*
 * agree_outcome - round 3 of smig_restore(): every rank's outcome of its
 * restore callback, so that all ranks give the same answer
 * IN rc - this rank's SMIG_RESTORED or error
 * RET SMIG_RESTORED if every rank restored, else the same error on every
 *     rank: SMIG_ERR_APP if a callback failed anywhere, else
 *     SMIG_ERR_IMAGE (SMIG_ERR_PMIX if the agreement itself failed)
 */
static int agree_outcome(smig_lib_t *st, uint64_t gen, uint64_t chosen,
			 int rc)
{
	uint64_t fail = 0, all;

	if (rc == SMIG_ERR_APP)
		fail = OUTCOME_APP_FAILED;
	else if (rc != SMIG_RESTORED)
		fail = OUTCOME_IMAGE_BAD;
	if (!agree(st, KEY_RESTORE_R3, gen, ~fail, &all))
		return SMIG_ERR_PMIX;
	fail = ~all;
	if (!fail)
		return SMIG_RESTORED;
	if (rc == SMIG_RESTORED)
		smig_log("generation %" PRIu64 " restored here, but not on every rank (%s%s%s): no rank goes on",
			 chosen,
			 fail & OUTCOME_APP_FAILED ? "a restore callback failed" : "",
			 fail == (OUTCOME_APP_FAILED | OUTCOME_IMAGE_BAD) ? ", " : "",
			 fail & OUTCOME_IMAGE_BAD ? "an image went bad while it was read" : "");
	return fail & OUTCOME_APP_FAILED ? SMIG_ERR_APP : SMIG_ERR_IMAGE;
}

/*
 * smig_lib_restore_refuse - smig_restore() on a rank that cannot restore
 * before any image was looked at (no generation in its manifest): it
 * still takes part in round 1, with generation 0 and nothing valid, so
 * that the other ranks fail with it instead of waiting in the fence
 */
void smig_lib_restore_refuse(smig_lib_t *st)
{
	uint64_t all;

	agree(st, KEY_RESTORE_R1, 0, 0, &all);
}

/*
 * smig_lib_restore_from - find the newest generation <= gen that every rank can
 * restore, hand it to the restore callback.
 * IN collective - smig_restore(): agree on the outcome after the callbacks
 * RET SMIG_RESTORED or an error (all ranks return an error together, except
 * when !collective and the restore callback of one rank fails)
 */
int smig_lib_restore_from(smig_lib_t *st, uint64_t gen, bool collective)
{
	smig_image_hdr_t hdr;
	void *payload = NULL;
	uint64_t mine, all, chosen = 0;
	unsigned i, span;
	/* Regions and streaming callbacks read the file themselves. */
	bool ok, whole = !st->restore_rd && !st->nregions;
	int rc;

	/* Round 1, the usual case: generation gen is good everywhere. */
	ok = load_image(st, gen, &hdr, whole ? &payload : NULL, false);
	if (!agree(st, KEY_RESTORE_R1, gen, ok ? 1 : 0, &all)) {
		free(payload);
		return SMIG_ERR_PMIX;
	}
	if (all & 1) {
		chosen = gen;
		goto restore;
	}
	free(payload);
	payload = NULL;

	/* Round 2: a set of images of one older generation, the same on all
	 * ranks (images of one generation are consistent with each other). */
	span = gen < FALLBACK_GENS ? gen : FALLBACK_GENS;
	mine = 0;
	/* Only generations the store recorded as good (every rank's image
	 * verified by the agents): an aborted one may be incomplete. */
	for (i = 1; i < span; i++)
		if (known_good(st, gen - i) &&
		    load_image(st, gen - i, &hdr, NULL, true))
			mine |= UINT64_C(1) << i;
	if (!agree(st, KEY_RESTORE_R2, gen, mine, &all))
		return SMIG_ERR_PMIX;
	for (i = 1; i < span; i++)
		if (all & (UINT64_C(1) << i))
			break;
	if (i >= span) {
		char good[256] = "none";
		size_t n = 0;

		mine |= ok ? 1 : 0;
		for (i = 0; i < span && n < sizeof(good) - 24; i++)
			if (mine & (UINT64_C(1) << i))
				n += snprintf(good + n, sizeof(good) - n,
					      "%s%" PRIu64, n ? "," : "",
					      gen - i);
		smig_log("no generation in %" PRIu64 "..%" PRIu64 " has a valid image on every rank: cannot restore (this rank's images: %s/rank%u.g<G>.img, valid for G=%s)",
			 gen - span + 1, gen, st->image_dir, st->me.rank,
			 good);
		return SMIG_ERR_IMAGE;
	}
	chosen = gen - i;
	smig_log("generation %" PRIu64 " is not valid on every rank: falling back to generation %" PRIu64,
		 gen, chosen);
	if (!load_image(st, chosen, &hdr, whole ? &payload : NULL, false)) {
		/* Verified a moment ago: the store changed under us. Other
		 * ranks may restore; never run on from a mixed set. */
		smig_log("image of generation %" PRIu64 " went bad after it was verified: cannot restore",
			 chosen);
		rc = SMIG_ERR_IMAGE;
		goto out;
	}

restore:
	if (st->nregions) {
		int err = restore_regions(st, chosen, &hdr, &rc);

		if (err) {
			rc = err;
			goto out;
		}
	} else if (st->restore_rd) {
		int err = restore_stream(st, chosen, &hdr, &rc);

		if (err) {
			rc = err;
			goto out;
		}
	} else if (holds_regions(payload, hdr.payload_len)) {
		smig_log("image of generation %" PRIu64 " holds memory regions, none is registered: register the same regions (smig_region_register()) before the restore",
			 chosen);
		free(payload);
		rc = SMIG_ERR_IMAGE;
		goto out;
	} else {
		rc = st->restore(payload, hdr.payload_len, st->arg);
		free(payload);
	}
	if (rc) {
		smig_log("restore callback failed (returned %d) on generation %" PRIu64,
			 rc, chosen);
		rc = SMIG_ERR_APP;
		goto out;
	}
	rc = SMIG_RESTORED;
out:
	if (collective)
		rc = agree_outcome(st, gen, chosen, rc);
	if (rc != SMIG_RESTORED)
		return rc;
	atomic_store(&st->count, hdr.safepoint);
	atomic_store(&st->last_good, chosen);
	pthread_mutex_lock(&st->lock);
	st->gen = chosen;
	pthread_mutex_unlock(&st->lock);
	smig_debug("restored generation %" PRIu64 " at safe point %" PRIu64 " (%" PRIu64 " bytes)",
		   chosen, hdr.safepoint, hdr.payload_len);
	return SMIG_RESTORED;
}
