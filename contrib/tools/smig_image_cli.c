/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_image_cli.c - smig-image(1): the recovery images of a job directory
 * without the balancer: list them with the manifest's word on each
 * generation, verify them, show a header, extract a payload
 *
 * The format and the store are src/common/smig_image.[ch]; every check here
 * is theirs (smig_image_verify(), smig_image_open(), smig_store_good_read()),
 * so the tool says what libsmig and the node agent would say of a file.
 *
 * Exit status: 0 success, 1 a file is bad or cannot be read or written,
 * 2 a usage error (doc/bad-input.md, "smig-image (CLI)").
 */
#define _GNU_SOURCE 1	/* mkostemp() */
#include "smig_config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <glib.h>
#include <xxhash.h>

#include "smig_image.h"
#include "smig_image_int.h"


static int cmd_list(int argc, char **argv);
static int cmd_verify(int argc, char **argv);
static int cmd_show(int argc, char **argv);
static int cmd_extract(int argc, char **argv);

static const struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *usage;
} commands[] = {
	{ "list", cmd_list, "list DIR [--json]" },
	{ "verify", cmd_verify, "verify FILE..." },
	{ "show", cmd_show, "show FILE [--json]" },
	{ "extract", cmd_extract, "extract FILE [-o OUT]" },
};

static const char *const what[] = {
	"the images of a job directory and which generations are good",
	"check header and payload checksums",
	"every header field and the file's state",
	"the payload, checked, to OUT (atomically) or a pipe",
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: smig-image COMMAND [ARGS]\n");
	for (size_t i = 0; i < G_N_ELEMENTS(commands); i++)
		fprintf(f, "  smig-image %-22s %s\n", commands[i].usage,
			what[i]);
	fprintf(f, "Exit status: 0 ok, 1 a bad or unreadable file, 2 usage.\n");
}

/* A usage error of subcommand cmd (RET 2). */
static int bad_arg(const char *cmd, const char *arg, const char *why)
{
	for (size_t i = 0; i < G_N_ELEMENTS(commands); i++)
		if (!strcmp(commands[i].name, cmd))
			fprintf(stderr, "smig-image %s: %s: %s (smig-image %s)\n",
				cmd, arg, why, commands[i].usage);
	return 2;
}

/*
 * text_str - s for a terminal: printable ASCII and valid UTF-8 as they are,
 * control characters and bytes of invalid UTF-8 as \xNN
 * RET new string, caller g_free()s
 */
static char *text_str(const char *s)
{
	bool utf8 = g_utf8_validate(s, -1, NULL);
	GString *o = g_string_new(NULL);

	for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
		if (*p < 0x20 || *p == 0x7f || *p == '\\' ||
		    (*p >= 0x80 && !utf8))
			g_string_append_printf(o, "\\x%02x", *p);
		else
			g_string_append_c(o, (char) *p);
	}
	return g_string_free(o, FALSE);
}

/* json_str - s as a JSON string; bytes of invalid UTF-8 as \u00NN */
static void json_str(GString *o, const char *s)
{
	bool utf8 = g_utf8_validate(s, -1, NULL);

	g_string_append_c(o, '"');
	for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
		if (*p == '"' || *p == '\\')
			g_string_append_printf(o, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f || (*p >= 0x80 && !utf8))
			g_string_append_printf(o, "\\u%04x", *p);
		else
			g_string_append_c(o, (char) *p);
	}
	g_string_append_c(o, '"');
}

/* created - the capture time as UTC ISO 8601 into buf */
static void created(char *buf, size_t len, uint64_t ns)
{
	time_t t = (time_t) (ns / 1000000000u);
	struct tm tm;

	if (!gmtime_r(&t, &tm) ||
	    !strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, len, "?");
}

/* --------------------------------------------------------------- list */

typedef struct entry {
	char *name;
	uint32_t rank;		/* of the name */
	uint64_t gen;
	smig_image_hdr_t hdr;
	char *bad;		/* why the header is refused; NULL: read */
} entry_t;

static int entry_cmp(const void *a, const void *b)
{
	const entry_t *x = a, *y = b;

	if (x->gen != y->gen)
		return x->gen < y->gen ? -1 : 1;
	if (x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	return strcmp(x->name, y->name);
}

/*
 * read_entry - the header of dir/e->name, checked as a reader would open
 * it (header checksum, size) and against the numbers of its name; the
 * payload is not read (smig-image verify does)
 */
static void read_entry(const char *dir, entry_t *e)
{
	char errbuf[512];
	char *path = g_build_filename(dir, e->name, NULL);
	int fd = smig_image_open(path, &e->hdr, errbuf, sizeof(errbuf));

	if (fd < 0) {
		e->bad = g_strdup(errbuf);
	} else {
		close(fd);
		if (e->hdr.rank != e->rank || e->hdr.generation != e->gen)
			e->bad = g_strdup_printf("%s: header says rank %" PRIu32 " generation %" PRIu64 ", the name rank %" PRIu32 " generation %" PRIu64,
						 path, e->hdr.rank,
						 e->hdr.generation, e->rank,
						 e->gen);
	}
	g_free(path);
}

static bool is_good(const uint64_t *gens, size_t n, uint64_t gen)
{
	for (size_t i = 0; i < n; i++)
		if (gens[i] == gen)
			return true;
	return false;
}

static void list_text(const entry_t *e, size_t n, const uint64_t *good,
		      size_t ngood, bool manifest_ok)
{
	char when[64];

	printf("%6s %8s %14s  %-20s  %-20s  %s\n", "RANK", "GEN", "BYTES",
	       "CREATED", "TAG", "GOOD");
	for (size_t i = 0; i < n; i++) {
		char *tag;

		if (e[i].bad) {
			printf("%6" PRIu32 " %8" PRIu64 " %14s  %-20s  %-20s  %s\n",
			       e[i].rank, e[i].gen, "-", "-", "-", "bad");
			continue;
		}
		created(when, sizeof(when), e[i].hdr.created_ns);
		tag = text_str(e[i].hdr.tag);
		printf("%6" PRIu32 " %8" PRIu64 " %14" PRIu64 "  %-20s  %-20s  %s\n",
		       e[i].rank, e[i].gen, e[i].hdr.payload_len, when, tag,
		       !manifest_ok ? "?" :
		       is_good(good, ngood, e[i].gen) ? "yes" : "no");
		g_free(tag);
	}
}

static void list_json(const char *dir, const entry_t *e, size_t n,
		      const uint64_t *good, size_t ngood, bool manifest_ok)
{
	GString *o = g_string_new("{\"dir\":");
	char when[64];

	json_str(o, dir);
	g_string_append(o, ",\"good\":");
	if (manifest_ok) {
		g_string_append_c(o, '[');
		for (size_t i = 0; i < ngood; i++)
			g_string_append_printf(o, "%s%" PRIu64, i ? "," : "",
					       good[i]);
		g_string_append_c(o, ']');
	} else {
		g_string_append(o, "null");
	}
	g_string_append(o, ",\"images\":[");
	for (size_t i = 0; i < n; i++) {
		g_string_append_printf(o, "%s{\"file\":", i ? "," : "");
		json_str(o, e[i].name);
		g_string_append_printf(o, ",\"rank\":%" PRIu32 ",\"generation\":%" PRIu64,
				       e[i].rank, e[i].gen);
		if (e[i].bad) {
			g_string_append(o, ",\"error\":");
			json_str(o, e[i].bad);
			g_string_append_c(o, '}');
			continue;
		}
		created(when, sizeof(when), e[i].hdr.created_ns);
		g_string_append_printf(o, ",\"job\":%" PRIu32 ",\"step\":%" PRIu32 ",\"nranks\":%" PRIu32 ",\"payload_len\":%" PRIu64 ",\"created_ns\":%" PRIu64 ",\"created\":\"%s\",\"tag\":",
				       e[i].hdr.job_id, e[i].hdr.step_id,
				       e[i].hdr.nranks, e[i].hdr.payload_len,
				       e[i].hdr.created_ns, when);
		json_str(o, e[i].hdr.tag);
		g_string_append_printf(o, ",\"good\":%s}",
				       !manifest_ok ? "null" :
				       is_good(good, ngood, e[i].gen) ?
				       "true" : "false");
	}
	g_string_append(o, "]}\n");
	fputs(o->str, stdout);
	g_string_free(o, TRUE);
}

/*
 * cmd_list - smig-image list DIR [--json]: the images of DIR (temporary
 * files of writers are not listed), oldest generation first. A header that
 * cannot be read, or a manifest that cannot, is named on stderr and makes
 * the exit status 1; the other images are still listed.
 */
static int cmd_list(int argc, char **argv)
{
	uint64_t good[SMIG_STORE_MAX_GOOD];
	const char *dir = NULL;
	GArray *ents;
	bool json = false, manifest_ok, opts = true;
	struct dirent *de;
	char errbuf[512];
	size_t ngood = 0;
	int rc = 0;
	DIR *d;

	for (int i = 1; i < argc; i++) {
		if (opts && !strcmp(argv[i], "--json"))
			json = true;
		else if (opts && !strcmp(argv[i], "--"))
			opts = false;
		else if (!dir && (!opts || argv[i][0] != '-'))
			dir = argv[i];
		else
			return bad_arg("list", argv[i], "unexpected argument");
	}
	if (!dir)
		return bad_arg("list", "DIR", "missing");
	if (!(d = opendir(dir))) {
		fprintf(stderr, "smig-image list: DIR=%s: %s\n", dir,
			g_strerror(errno));
		return 1;
	}
	ents = g_array_new(FALSE, TRUE, sizeof(entry_t));
	while ((errno = 0, de = readdir(d))) {
		entry_t e = { 0 };
		bool tmp;

		if (!smig_image_parse_name(de->d_name, &e.rank, &e.gen, &tmp) ||
		    tmp)
			continue;
		e.name = g_strdup(de->d_name);
		read_entry(dir, &e);
		g_array_append_val(ents, e);
	}
	if (errno) {
		fprintf(stderr, "smig-image list: DIR=%s: %s\n", dir,
			g_strerror(errno));
		rc = 1;
	}
	closedir(d);
	g_array_sort(ents, entry_cmp);

	manifest_ok = smig_store_good_read(dir, good, &ngood, errbuf,
					   sizeof(errbuf)) == 0;
	if (!manifest_ok) {
		fprintf(stderr, "smig-image list: manifest: %s\n", errbuf);
		rc = 1;
	}
	for (guint i = 0; i < ents->len; i++) {
		entry_t *e = &g_array_index(ents, entry_t, i);

		if (e->bad) {
			fprintf(stderr, "smig-image list: %s\n", e->bad);
			rc = 1;
		}
	}
	if (json)
		list_json(dir, (entry_t *) ents->data, ents->len, good, ngood,
			  manifest_ok);
	else
		list_text((entry_t *) ents->data, ents->len, good, ngood,
			  manifest_ok);
	for (guint i = 0; i < ents->len; i++) {
		g_free(g_array_index(ents, entry_t, i).name);
		g_free(g_array_index(ents, entry_t, i).bad);
	}
	g_array_free(ents, TRUE);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "smig-image list: standard output: %s\n",
			g_strerror(errno));
		rc = 1;
	}
	return rc;
}

/* ------------------------------------------------------------- verify */

/*
 * cmd_verify - smig-image verify FILE...: each file as smig_image_verify()
 * sees it (header and its checksum, size, payload checksum); one line per
 * file, "FILE: ok (...)" on stdout or smig_image_verify()'s message on
 * stderr. Exit status 1 if any file is bad.
 */
static int cmd_verify(int argc, char **argv)
{
	const char **files = g_new0(const char *, argc);
	bool opts = true;
	int n = 0, rc = 0;

	for (int i = 1; i < argc; i++) {
		if (opts && !strcmp(argv[i], "--")) {
			opts = false;
		} else if (opts && argv[i][0] == '-' && argv[i][1]) {
			g_free(files);
			return bad_arg("verify", argv[i],
				       "unexpected argument");
		} else {
			files[n++] = argv[i];
		}
	}
	if (!n) {
		g_free(files);
		return bad_arg("verify", "FILE", "missing");
	}
	for (int i = 0; i < n; i++) {
		smig_image_hdr_t hdr;
		char errbuf[512];

		if (smig_image_verify(files[i], &hdr, errbuf,
				      sizeof(errbuf)) < 0) {
			fprintf(stderr, "smig-image verify: %s\n", errbuf);
			rc = 1;
			continue;
		}
		printf("%s: ok (job %" PRIu32 " rank %" PRIu32 " of %" PRIu32 " generation %" PRIu64 ", %" PRIu64 " payload bytes)\n",
		       files[i], hdr.job_id, hdr.rank, hdr.nranks,
		       hdr.generation, hdr.payload_len);
	}
	g_free(files);
	if (fflush(stdout) != 0) {
		fprintf(stderr, "smig-image verify: standard output: %s\n",
			g_strerror(errno));
		rc = 1;
	}
	return rc;
}

/* --------------------------------------------------------------- show */

/*
 * read_header - the raw header bytes of path and its fields (the payload
 * and the file's size are not checked here)
 * RET 0, or -1 after a message naming the file on stderr
 */
static int read_header(const char *path, unsigned char *raw,
		       smig_image_hdr_t *hdr, uint64_t *size)
{
	char errbuf[256];
	struct stat st;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0) {
		fprintf(stderr, "smig-image show: %s: %s\n", path,
			errno == ELOOP ? "is a symbolic link (refused)" :
			g_strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		fprintf(stderr, "smig-image show: %s: not a regular file (refused)\n",
			path);
		close(fd);
		return -1;
	}
	*size = (uint64_t) st.st_size;
	do
		n = pread(fd, raw, SMIG_IMAGE_HEADER_SIZE, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		fprintf(stderr, "smig-image show: %s: read: %s\n", path,
			g_strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	if (smig_image_decode_header(raw, (size_t) n, hdr, errbuf,
				     sizeof(errbuf)) < 0) {
		fprintf(stderr, "smig-image show: %s: %s\n", path, errbuf);
		return -1;
	}
	return 0;
}

static uint64_t le64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/*
 * cmd_show - smig-image show FILE [--json]: every header field, the file's
 * size and whether the image verifies. A header that cannot be decoded
 * shows nothing; a bad payload shows the header and "bad: why". Exit
 * status 1 unless the image verifies.
 */
static int cmd_show(int argc, char **argv)
{
	unsigned char raw[SMIG_IMAGE_HEADER_SIZE];
	smig_image_hdr_t hdr, vhdr;
	const char *path = NULL;
	char errbuf[512], when[64];
	bool json = false, opts = true, ok;
	uint64_t size;
	char *tag;

	for (int i = 1; i < argc; i++) {
		if (opts && !strcmp(argv[i], "--json"))
			json = true;
		else if (opts && !strcmp(argv[i], "--"))
			opts = false;
		else if (!path && (!opts || argv[i][0] != '-'))
			path = argv[i];
		else
			return bad_arg("show", argv[i], "unexpected argument");
	}
	if (!path)
		return bad_arg("show", "FILE", "missing");
	if (read_header(path, raw, &hdr, &size) < 0)
		return 1;
	ok = smig_image_verify(path, &vhdr, errbuf, sizeof(errbuf)) == 0;
	created(when, sizeof(when), hdr.created_ns);
	if (json) {
		GString *o = g_string_new("{\"file\":");

		json_str(o, path);
		g_string_append_printf(o, ",\"ok\":%s,\"error\":",
				       ok ? "true" : "false");
		if (ok)
			g_string_append(o, "null");
		else
			json_str(o, errbuf);
		g_string_append_printf(o, ",\"file_size\":%" PRIu64 ",\"version\":%" PRIu32 ",\"header_size\":%d,\"job\":%" PRIu32 ",\"step\":%" PRIu32 ",\"rank\":%" PRIu32 ",\"nranks\":%" PRIu32 ",\"generation\":%" PRIu64 ",\"safepoint\":%" PRIu64 ",\"payload_len\":%" PRIu64 ",\"created_ns\":%" PRIu64 ",\"created\":\"%s\",\"tag\":",
				       size, hdr.version,
				       SMIG_IMAGE_HEADER_SIZE, hdr.job_id,
				       hdr.step_id, hdr.rank, hdr.nranks,
				       hdr.generation, hdr.safepoint,
				       hdr.payload_len, hdr.created_ns, when);
		json_str(o, hdr.tag);
		g_string_append_printf(o, ",\"payload_xxh3\":\"%016" PRIx64 "\",\"header_xxh3\":\"%016" PRIx64 "\"}\n",
				       hdr.payload_hash, le64(raw + 120));
		fputs(o->str, stdout);
		g_string_free(o, TRUE);
	} else {
		tag = text_str(hdr.tag);
		printf("file:         %s\n", path);
		printf("state:        %s%s\n", ok ? "ok" : "bad: ",
		       ok ? "" : errbuf);
		printf("file size:    %" PRIu64 "\n", size);
		printf("version:      %" PRIu32 "\n", hdr.version);
		printf("header size:  %d\n", SMIG_IMAGE_HEADER_SIZE);
		printf("job:          %" PRIu32 "\n", hdr.job_id);
		printf("step:         %" PRIu32 "\n", hdr.step_id);
		printf("rank:         %" PRIu32 "\n", hdr.rank);
		printf("ranks:        %" PRIu32 "\n", hdr.nranks);
		printf("generation:   %" PRIu64 "\n", hdr.generation);
		printf("safe point:   %" PRIu64 "\n", hdr.safepoint);
		printf("payload:      %" PRIu64 " bytes\n", hdr.payload_len);
		printf("created:      %s (%" PRIu64 " ns)\n", when,
		       hdr.created_ns);
		printf("tag:          %s\n", tag);
		printf("payload xxh3: %016" PRIx64 "\n", hdr.payload_hash);
		printf("header xxh3:  %016" PRIx64 "\n", le64(raw + 120));
		g_free(tag);
	}
	if (!ok)
		fprintf(stderr, "smig-image show: %s\n", errbuf);
	if (fflush(stdout) != 0) {
		fprintf(stderr, "smig-image show: standard output: %s\n",
			g_strerror(errno));
		return 1;
	}
	return ok ? 0 : 1;
}

/* ------------------------------------------------------------ extract */

/*
 * copy_payload - the payload of path (smig_image_open()ed, its header
 * checked) to out, summed on the way
 * RET 0 if every byte was copied and the sum is the header's; -1 after a
 *     message on stderr naming path (or "to" for a write error)
 */
static int copy_payload(const char *path, int out, const char *to)
{
	XXH3_state_t *state = XXH3_createState();
	char *buf = g_malloc(SMIG_IMG_CHUNK), errbuf[512];
	smig_image_hdr_t hdr;
	uint64_t left, sum;
	int fd, rc = -1, e;

	if ((fd = smig_image_open(path, &hdr, errbuf, sizeof(errbuf))) < 0) {
		fprintf(stderr, "smig-image extract: %s\n", errbuf);
		goto out;
	}
	if (!state || XXH3_64bits_reset(state) != XXH_OK) {
		fprintf(stderr, "smig-image extract: %s: out of memory\n",
			path);
		goto out;
	}
	for (left = hdr.payload_len; left > 0;) {
		size_t want = left > SMIG_IMG_CHUNK ? SMIG_IMG_CHUNK : (size_t) left;
		ssize_t n = read(fd, buf, want);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "smig-image extract: %s: generation %" PRIu64 ": read: %s\n",
				path, hdr.generation,
				n < 0 ? g_strerror(errno) :
				"file shrank while read");
			goto out;
		}
		XXH3_64bits_update(state, buf, (size_t) n);
		if ((e = smig_img_write_all(out, buf, (uint64_t) n)) < 0) {
			fprintf(stderr, "smig-image extract: %s: write: %s\n",
				to, g_strerror(-e));
			goto out;
		}
		left -= (uint64_t) n;
	}
	sum = XXH3_64bits_digest(state);
	if (sum != hdr.payload_hash) {
		fprintf(stderr, "smig-image extract: %s: generation %" PRIu64 ": payload checksum mismatch (expected %016" PRIx64 ", found %016" PRIx64 ")\n",
			path, hdr.generation, hdr.payload_hash, sum);
		goto out;
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	XXH3_freeState(state);
	g_free(buf);
	return rc;
}

/*
 * extract_to - the payload into out atomically: "OUT.tmp.XXXXXX" beside
 * it, mode 0600 (like the image), written and checked, fsync, rename,
 * fsync of its directory. A bad image leaves out untouched.
 * RET 0 or 1 after a message on stderr
 */
static int extract_to(const char *path, const char *out)
{
	char *tmp = g_strdup_printf("%s.tmp.XXXXXX", out);
	char *dir = g_path_get_dirname(out);
	int fd, e, rc = 1;

	if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
		fprintf(stderr, "smig-image extract: -o %s: cannot create a temporary file beside it: %s\n",
			out, g_strerror(errno));
		goto out_free;
	}
	if (copy_payload(path, fd, tmp) < 0)
		goto out_unlink;
	if (fsync(fd) < 0 || close(fd) < 0) {
		fprintf(stderr, "smig-image extract: %s: %s\n", tmp,
			g_strerror(errno));
		fd = -1;
		goto out_unlink;
	}
	fd = -1;
	if (rename(tmp, out) < 0) {
		fprintf(stderr, "smig-image extract: -o %s: rename from %s: %s\n",
			out, tmp, g_strerror(errno));
		goto out_unlink;
	}
	if ((e = smig_img_fsync_dir(dir)) < 0) {
		fprintf(stderr, "smig-image extract: -o %s: fsync of directory %s: %s\n",
			out, dir, g_strerror(-e));
		goto out_free;
	}
	rc = 0;
	goto out_free;

out_unlink:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
out_free:
	g_free(tmp);
	g_free(dir);
	return rc;
}

/*
 * cmd_extract - smig-image extract FILE [-o OUT]: the payload, verified:
 * to OUT only once every byte matched the checksum, or to standard output
 * (not a terminal) after smig_image_verify() passed, summed again while
 * copied (a file changed in between is reported, exit status 1).
 */
static int cmd_extract(int argc, char **argv)
{
	const char *path = NULL, *out = NULL;
	smig_image_hdr_t hdr;
	char errbuf[512];
	bool opts = true;

	for (int i = 1; i < argc; i++) {
		if (opts && !strcmp(argv[i], "-o")) {
			if (i + 1 >= argc)
				return bad_arg("extract", "-o",
					       "OUT missing");
			if (out)
				return bad_arg("extract", "-o",
					       "given twice");
			out = argv[++i];
			if (!out[0])
				return bad_arg("extract", "-o ''",
					       "empty OUT");
		} else if (opts && !strcmp(argv[i], "--")) {
			opts = false;
		} else if (!path && (!opts || argv[i][0] != '-')) {
			path = argv[i];
		} else {
			return bad_arg("extract", argv[i],
				       "unexpected argument");
		}
	}
	if (!path)
		return bad_arg("extract", "FILE", "missing");
	if (out && strcmp(out, "-"))
		return extract_to(path, out);
	if (isatty(STDOUT_FILENO)) {
		fprintf(stderr, "smig-image extract: %s: standard output is a terminal: refused (use -o OUT or a pipe)\n",
			path);
		return 2;
	}
	if (smig_image_verify(path, &hdr, errbuf, sizeof(errbuf)) < 0) {
		fprintf(stderr, "smig-image extract: %s\n", errbuf);
		return 1;
	}
	return copy_payload(path, STDOUT_FILENO, "standard output") < 0;
}

int main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("smig-image (slurm-migrate) %s\n", PACKAGE_VERSION);
		return 0;
	}
	for (size_t i = 0; i < G_N_ELEMENTS(commands); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "smig-image: %s: unknown command (list, verify, show, extract)\n",
		argv[1]);
	return 2;
}
