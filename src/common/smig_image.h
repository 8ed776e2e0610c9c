/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_image.h - the recovery image format and its atomic store
 *
 * libc + libxxhash only (no glib): this file is linked into the application
 * library (contrib/libsmig) as well as into the core.
 *
 * An image is one file per rank and generation, "<dir>/rank<R>.g<G>.img":
 *
 *   offset size  field (little-endian)
 *   0      8     magic "SMIGIMG\0"
 *   8      4     format version (SMIG_IMAGE_VERSION)
 *   12     4     header size (SMIG_IMAGE_HEADER_SIZE)
 *   16     4     job id
 *   20     4     step id of the capture
 *   24     4     rank
 *   28     4     number of ranks of the step
 *   32     8     generation (>= 1)
 *   40     8     safe-point count at capture
 *   48     8     payload length
 *   56     8     capture time, ns since the epoch (CLOCK_REALTIME)
 *   64     32    application tag, NUL-padded
 *   96     8     XXH3-64 of the payload
 *   104    16    reserved, zero
 *   120    8     XXH3-64 of bytes 0..119
 *   128    ...   payload
 *
 * Writing is atomic: a temporary name in the same directory, write, fsync,
 * rename, fsync of the directory; a reader never sees a partial image under
 * the final name, and a crash leaves the previous generation intact.
 * Errors are returned as -errno-style codes with a message in errbuf that
 * names the path, the generation and what is wrong.
 */
#ifndef SMIG_IMAGE_H
#define SMIG_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SMIG_IMAGE_MAGIC	"SMIGIMG"	/* plus its NUL: 8 bytes */
#define SMIG_IMAGE_VERSION	1
#define SMIG_IMAGE_HEADER_SIZE	128
#define SMIG_IMAGE_TAG_LEN	32
/* Largest payload accepted when reading (64 GiB). */
#define SMIG_IMAGE_MAX_PAYLOAD	(UINT64_C(1) << 36)

typedef struct smig_image_hdr {
	uint32_t version;
	uint32_t job_id;
	uint32_t step_id;
	uint32_t rank;
	uint32_t nranks;
	uint64_t generation;
	uint64_t safepoint;
	uint64_t payload_len;
	uint64_t created_ns;
	char tag[SMIG_IMAGE_TAG_LEN + 1];	/* NUL-terminated */
	uint64_t payload_hash;
} smig_image_hdr_t;

/* Error codes (negative), besides -errno of a failed system call. */
#define SMIG_IMAGE_EBADMAGIC	(-1001)	/* not an image */
#define SMIG_IMAGE_EVERSION	(-1002)	/* unknown format version */
#define SMIG_IMAGE_EHDRSUM	(-1003)	/* header checksum mismatch */
#define SMIG_IMAGE_ESUM		(-1004)	/* payload checksum mismatch */
#define SMIG_IMAGE_ETRUNC	(-1005)	/* file shorter than the header says */
#define SMIG_IMAGE_EINVAL	(-1006)	/* a header field out of range */

/*
 * smig_image_path - "<dir>/rank<R>.g<G>.img" into buf
 * RET 0, or -ENAMETOOLONG if it does not fit
 */
int smig_image_path(char *buf, size_t len, const char *dir, uint32_t rank,
		    uint64_t generation);

/*
 * smig_image_encode_header - the 128 header bytes for hdr and its payload
 * IN  hdr - fields; payload_hash is computed from payload, version set here
 * OUT out - SMIG_IMAGE_HEADER_SIZE bytes
 */
void smig_image_encode_header(const smig_image_hdr_t *hdr, const void *payload,
			      unsigned char out[SMIG_IMAGE_HEADER_SIZE]);

/*
 * smig_image_decode_header - parse and check header bytes (not the payload)
 * IN  buf, len - bytes read (not trusted)
 * OUT hdr      - fields, on success
 * RET 0, or SMIG_IMAGE_E* with a message in errbuf
 */
int smig_image_decode_header(const void *buf, size_t len, smig_image_hdr_t *hdr,
			     char *errbuf, size_t errlen);

/*
 * smig_image_write - store one image atomically (see above), mode 0600
 * IN hdr     - fields; generation, rank, job must be set (borrowed)
 * IN payload - the application's state (borrowed)
 * OUT path   - final path, if pathbuf is not NULL
 * RET 0 or a negative code with a message in errbuf
 */
int smig_image_write(const char *dir, const smig_image_hdr_t *hdr,
		     const void *payload, char *pathbuf, size_t pathlen,
		     char *errbuf, size_t errlen);

/*
 * smig_image_write_file - smig_image_write() of the first hdr->payload_len
 * bytes of the file in_fd as the payload (a checkpoint file handed over by
 * libsmig's smig_capture_file() or written on capture=signal): copied in
 * the kernel (copy_file_range(2); a read/write loop where it refuses),
 * checksummed in one pass over the bytes as they are in the new image,
 * never held in memory whole. (No reflink: the payload's offset, 128, is
 * not a block boundary.)
 * IN in_name  - in_fd's name for messages
 * IN uid, gid - owner of the image; (uint32_t) -1: leave it
 * RET 0 or a negative code with a message in errbuf (the file shrank:
 *     -EIO)
 */
int smig_image_write_file(const char *dir, const smig_image_hdr_t *hdr,
			  int in_fd, const char *in_name, uint32_t uid,
			  uint32_t gid, char *pathbuf, size_t pathlen,
			  char *errbuf, size_t errlen);

/*
 * An image written in place, in pieces (libsmig's regions and pre-copy,
 * src/common/smig_region.h): the same format and commit as
 * smig_image_write(), but the caller writes the payload at offset
 * SMIG_IMAGE_HEADER_SIZE of the temporary file itself, in any order and
 * any number of times, and knows its checksum.
 *
 * smig_image_tmp_create - "<dir>/rank<R>.g<G>.img.tmp.XXXXXX", mode 0600
 * OUT tmp - its name (at least 4096 + 16 bytes)
 * RET the open file, or a negative code with a message in errbuf
 */
int smig_image_tmp_create(const char *dir, const smig_image_hdr_t *hdr,
			  char *tmp, size_t tmplen, char *errbuf,
			  size_t errlen);

/*
 * smig_image_tmp_commit - finish an image of smig_image_tmp_create(): the
 * file is cut to header + hdr->payload_len, the header (with payload_hash,
 * the caller's XXH3-64 of the payload) written, fsync, rename, fsync of dir.
 * Closes fd; removes tmp on failure. The payload is not read back: a
 * payload_hash that does not match what is on disk makes an image every
 * reader refuses (SMIG_IMAGE_ESUM), never a wrong one.
 * RET 0 or a negative code with a message in errbuf
 */
int smig_image_tmp_commit(const char *dir, const smig_image_hdr_t *hdr,
			  uint64_t payload_hash, int fd, const char *tmp,
			  char *pathbuf, size_t pathlen, char *errbuf,
			  size_t errlen);

/*
 * smig_image_extract_fd - the payload of an image into a file, in the
 * kernel as smig_image_write_file(), checksummed as it is in the copy
 * IN img_fd   - the image, from smig_image_open() (hdr its header)
 * IN out_fd   - the file to write from offset 0 (truncated to the payload)
 * IN img_path, out_name - for messages
 * RET 0 (the copy matches the header's checksum) or a negative code with a
 *     message in errbuf (SMIG_IMAGE_ESUM: it does not)
 */
int smig_image_extract_fd(int img_fd, const smig_image_hdr_t *hdr,
			  const char *img_path, int out_fd,
			  const char *out_name, char *errbuf, size_t errlen);

/*
 * smig_image_read - read and verify a whole image
 * OUT hdr     - header fields
 * OUT payload - new buffer, caller frees with free(); set only on success
 * RET 0 or a negative code with a message in errbuf
 * The file is opened with O_NOFOLLOW: a symbolic link is refused.
 */
int smig_image_read(const char *path, smig_image_hdr_t *hdr, void **payload,
		    char *errbuf, size_t errlen);

/*
 * smig_image_open - open an image for reading its payload: a regular file
 * (O_NOFOLLOW: a symbolic link is refused), header checked, file size equal
 * to header plus payload length (the payload itself is not checked)
 * OUT hdr - header fields, on success
 * RET file descriptor positioned at the payload (caller closes), or a
 *     negative code with a message in errbuf naming the path
 */
int smig_image_open(const char *path, smig_image_hdr_t *hdr, char *errbuf,
		    size_t errlen);

/*
 * smig_image_parse_name - an image file name, "rank<R>.g<G>.img", or the
 * temporary name of one being written, "rank<R>.g<G>.img.tmp.XXXXXX"
 * OUT rank, gen - the numbers of the name
 * OUT tmp       - whether it is a temporary name
 * RET true if name is one of these
 */
bool smig_image_parse_name(const char *name, uint32_t *rank, uint64_t *gen,
			   bool *tmp);

/*
 * smig_image_verify - check an image without keeping its payload (streams
 * the checksum; constant memory)
 * RET 0 or a negative code with a message in errbuf
 */
int smig_image_verify(const char *path, smig_image_hdr_t *hdr, char *errbuf,
		      size_t errlen);

/*
 * The store's record of good generations: "<dir>/good", written by the node
 * agent when the balancer commits a generation (every rank's image written
 * and verified). Text, one line per good generation, oldest first, at most
 * SMIG_STORE_MAX_GOOD lines:
 *
 *   smig-good 1
 *   gen 7
 *   gen 9
 *
 * Written atomically (temporary name, fsync, rename, fsync of the directory).
 */
#define SMIG_STORE_MANIFEST	"good"
#define SMIG_STORE_MAX_GOOD	64

/*
 * smig_store_good_read - the good generations recorded in dir
 * OUT gens - ascending, up to SMIG_STORE_MAX_GOOD entries
 * OUT n    - number of entries (0 if the manifest does not exist)
 * RET 0 (also when there is no manifest: *n = 0), or a negative code with a
 *     message in errbuf naming the file, line and what is wrong
 */
int smig_store_good_read(const char *dir, uint64_t *gens, size_t *n,
			 char *errbuf, size_t errlen);

/*
 * smig_store_commit - record gen as good and keep the newest retain good
 * generations in the manifest (retain >= 1: the newest good one is never
 * dropped)
 * IN uid, gid  - owner given to the manifest (root callers); (uid_t) -1
 *                leaves it
 * OUT keep_from - oldest good generation kept: images below it may go
 * RET 0 or a negative code with a message in errbuf
 */
int smig_store_commit(const char *dir, uint64_t gen, uint32_t retain,
		      uint32_t uid, uint32_t gid, uint64_t *keep_from,
		      char *errbuf, size_t errlen);

/*
 * smig_store_prune - delete the images of ranks with a generation below
 * keep_from, and temporary files of generations <= newest (left by writers
 * that died); other ranks' files are left alone (another node owns them)
 * IN ranks - the ranks whose files may go (borrowed)
 * RET number of files deleted, or a negative code with a message in errbuf
 */
int smig_store_prune(const char *dir, const uint32_t *ranks, size_t nranks,
		     uint64_t keep_from, uint64_t newest, char *errbuf,
		     size_t errlen);

/*
 * smig_image_send - stream the file at path (an image, read as it is on
 * disk) to out_fd (a socket) with sendfile()
 * IN  len - bytes to send: the file's size, as announced to the receiver
 * RET 0 or a negative code with a message in errbuf
 */
int smig_image_send(const char *path, int out_fd, uint64_t len, char *errbuf,
		    size_t errlen);

/*
 * smig_image_receive - store an image arriving on in_fd (len bytes, the
 * whole file) as "<dir>/rank<R>.g<G>.img": temporary name, header checked
 * and payload checksummed while it is written (one pass), fsync, rename,
 * fsync of dir. An image that is not the one expected (job, rank,
 * generation), bad or short never gets the final name.
 * IN uid, gid - owner of the file (the job's user); (uint32_t) -1: leave
 * OUT hdr     - header of the stored image, on success
 * RET 0 or a negative code with a message in errbuf naming the file
 */
int smig_image_receive(const char *dir, uint32_t job_id, uint32_t rank,
		       uint64_t gen, int in_fd, uint64_t len, uint32_t uid,
		       uint32_t gid, smig_image_hdr_t *hdr, char *errbuf,
		       size_t errlen);

/* Identity of a job directory: taken once, compared at each capture. */
typedef struct smig_dir_id {
	uint64_t dev;
	uint64_t ino;
	uint32_t uid;
} smig_dir_id_t;

/*
 * smig_dir_id_get - the identity of dir, which must be a directory and not
 * a symbolic link (lstat)
 * OUT id - device, inode and owner
 * RET 0, or -errno (-ENOTDIR for a symbolic link or another file) with a
 *     message in errbuf
 */
int smig_dir_id_get(const char *dir, smig_dir_id_t *id, char *errbuf,
		    size_t errlen);

/*
 * smig_dir_check - dir is still the directory of id: not a symbolic link,
 * same device, inode and owner. Root can replace a job directory while the
 * job runs; images written through the new one would land elsewhere.
 * RET 0, or -errno (-ELOOP: now a symbolic link; -EXDEV: another
 *     directory; -EPERM: another owner) with a message in errbuf
 */
int smig_dir_check(const char *dir, const smig_dir_id_t *id, char *errbuf,
		   size_t errlen);

/* smig_image_strerror - static text of a SMIG_IMAGE_E* code or -errno */
const char *smig_image_strerror(int code);

#endif /* SMIG_IMAGE_H */
