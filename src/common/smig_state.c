/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_state.c - the balancer's durable state file (format in smig_state.h)
 */
#include "smig_config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <glib.h>
#include <glib/gstdio.h>

#include "smig_error.h"
#include "smig_state.h"

#define MAGIC		"SMIGSTAT"
#define HDR_LEN		56
#define SUM_LEN		32	/* SHA-256 */

bool smig_state_check_dir(const char *dir, GError **error)
{
	struct stat st;

	if (stat(dir, &st) < 0) {
		int e = errno;

		g_set_error(error, SMIG_ERROR, SMIG_ERROR_CONFIG,
			    "MigrateStateDir=%s: %s (create it, owned by SlurmUser, mode 0700)",
			    dir, g_strerror(e));
		return false;
	}
	if (!S_ISDIR(st.st_mode)) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_CONFIG,
			    "MigrateStateDir=%s: not a directory", dir);
		return false;
	}
	return true;
}

static bool sha256(const uint8_t *data, size_t len, uint8_t out[SUM_LEN])
{
	GChecksum *ck = g_checksum_new(G_CHECKSUM_SHA256);
	gsize n = SUM_LEN;

	g_checksum_update(ck, data, len);
	g_checksum_get_digest(ck, out, &n);
	g_checksum_free(ck);
	return n == SUM_LEN;
}

/* write all of buf; RET false with errno set */
static bool write_all(int fd, const uint8_t *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return false;
		buf += n;
		len -= n;
	}
	return true;
}

bool smig_state_save(const char *dir, GVariant *state, GError **error)
{
	char *path = g_build_filename(dir, SMIG_STATE_FILE, NULL);
	char *tmp = g_strconcat(path, ".tmp.XXXXXX", NULL);
	GVariant *le;
	uint8_t hdr[HDR_LEN] = { 0 };
	const uint8_t *body;
	uint64_t len;
	bool ok = false;
	int fd, dfd, e;

	g_variant_ref_sink(state);
	le = G_BYTE_ORDER == G_LITTLE_ENDIAN ? g_variant_ref(state) :
					       g_variant_byteswap(state);
	body = g_variant_get_data(le);
	len = g_variant_get_size(le);

	memcpy(hdr, MAGIC, 8);
	*(uint32_t *) (hdr + 8) = GUINT32_TO_LE(SMIG_STATE_VERSION);
	*(uint64_t *) (hdr + 16) = GUINT64_TO_LE(len);
	sha256(body ? body : (const uint8_t *) "", len, hdr + 24);

	fd = g_mkstemp_full(tmp, O_WRONLY | O_CLOEXEC, 0600);
	if (fd < 0) {
		e = errno;
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_IO,
			    "%s: cannot create: %s", tmp, g_strerror(e));
		goto out;
	}
	if (!write_all(fd, hdr, HDR_LEN) || !write_all(fd, body, len) ||
	    fsync(fd) < 0) {
		e = errno;
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_IO,
			    "%s: write: %s", tmp, g_strerror(e));
		close(fd);
		unlink(tmp);
		goto out;
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		e = errno;
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_IO,
			    "%s: rename to %s: %s", tmp, path, g_strerror(e));
		unlink(tmp);
		goto out;
	}
	/* The rename itself must survive a crash of the machine. */
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	ok = true;
out:
	g_variant_unref(le);
	g_variant_unref(state);
	g_free(tmp);
	g_free(path);
	return ok;
}

/*
 * Keep a bad file for the admin under a name of its own (<path>.bad-<time>,
 * -2, -3... when another was set aside in the same second: never over an
 * older one); RET the new name, caller g_free()s
 */
static char *set_aside(const char *path)
{
	long long now = (long long) time(NULL);
	char *aside = NULL, *why;
	int rc = -1;

	for (int i = 1; i <= 100; i++) {
		g_free(aside);
		aside = i == 1 ? g_strdup_printf("%s.bad-%lld", path, now) :
			g_strdup_printf("%s.bad-%lld-%d", path, now, i);
		/* link() never replaces a name (rename() would). */
		rc = link(path, aside);
		if (rc == 0 || errno != EEXIST)
			break;
	}
	if (rc == 0 && unlink(path) < 0) {
		int e = errno;

		unlink(aside);
		errno = e;
		rc = -1;
	}
	if (rc < 0) {
		int e = errno;

		why = g_strdup_printf("(could not rename it to %s: %s)",
					    aside, g_strerror(e));

		g_free(aside);
		return why;
	}
	why = g_strdup_printf("(kept as %s)", aside);
	g_free(aside);
	return why;
}

bool smig_state_load(const char *dir, GVariant **state, GError **error)
{
	char *path = g_build_filename(dir, SMIG_STATE_FILE, NULL);
	GError *err = NULL;
	gchar *data = NULL;
	gsize size = 0;
	uint8_t sum[SUM_LEN];
	uint32_t version;
	uint64_t len;
	char *why = NULL, *aside;
	GVariant *v;
	GBytes *bytes;

	*state = NULL;
	if (!g_file_get_contents(path, &data, &size, &err)) {
		bool missing = g_error_matches(err, G_FILE_ERROR,
					       G_FILE_ERROR_NOENT);

		if (missing) {
			g_error_free(err);
			g_free(path);
			return true;
		}
		why = g_strdup(err->message);
		g_error_free(err);
		goto bad;
	}
	if (size < HDR_LEN || memcmp(data, MAGIC, 8)) {
		why = g_strdup_printf("%s: not a state file of slurm-migrate (%zu bytes, no SMIGSTAT header)",
				      path, (size_t) size);
		goto bad;
	}
	version = GUINT32_FROM_LE(*(uint32_t *) (data + 8));
	if (version != SMIG_STATE_VERSION) {
		why = g_strdup_printf("%s: format version %u (this build reads %u)",
				      path, version, SMIG_STATE_VERSION);
		goto bad;
	}
	len = GUINT64_FROM_LE(*(uint64_t *) (data + 16));
	if (len > SMIG_STATE_MAX || len != size - HDR_LEN) {
		why = g_strdup_printf("%s: truncated or overlong: header says %llu bytes of state, the file holds %zu",
				      path, (unsigned long long) len,
				      (size_t) (size - HDR_LEN));
		goto bad;
	}
	sha256((const uint8_t *) data + HDR_LEN, len, sum);
	if (memcmp(sum, data + 24, SUM_LEN)) {
		why = g_strdup_printf("%s: checksum mismatch (SHA-256 of %llu bytes)",
				      path, (unsigned long long) len);
		goto bad;
	}
	bytes = g_bytes_new_take(data, size);
	data = NULL;
	{
		GBytes *body = g_bytes_new_from_bytes(bytes, HDR_LEN, len);

		/* trusted=FALSE: a wrong body is read as defaults, never
		 * out of bounds. */
		v = g_variant_new_from_bytes(G_VARIANT_TYPE_VARDICT, body,
					     FALSE);
		g_bytes_unref(body);
	}
	g_bytes_unref(bytes);
	if (G_BYTE_ORDER != G_LITTLE_ENDIAN) {
		GVariant *sw = g_variant_byteswap(v);

		g_variant_unref(v);
		v = sw;
	}
	*state = g_variant_ref_sink(v);
	g_free(path);
	return true;
bad:
	aside = set_aside(path);
	g_set_error(error, SMIG_ERROR, SMIG_ERROR_STATE, "%s %s", why, aside);
	g_free(aside);
	g_free(why);
	g_free(data);
	g_free(path);
	return false;
}
