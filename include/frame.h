/* frame.h - the inter-broker frame: the unit every message between brokers
 * travels in, and the bounds-checked codec for the fields inside it.
 *
 * Layout, big-endian, FRAME_HEADER_SIZE bytes of header then the payload:
 *
 *   0  u32 magic          FRAME_MAGIC ("TFW1")
 *   4  u16 version        FRAME_VERSION
 *   6  u16 type           enum frame_type
 *   8  u32 flags          meaning per type (the codec does not read them)
 *  12  u32 length         payload bytes
 *  16  u64 id             request/correlation id: a reply carries its request's
 *  24  u64 checksum       XXH3-64 of bytes [0, 24) followed by the payload
 *  32  u32 header_check   low 32 bits of XXH3-64 of bytes [0, 32)
 *
 * Magic and version come first and keep their place in every later version,
 * so a peer speaking another version is told apart (-EPROTO) from garbage.
 * The header check lets a receiver trust `length` before it waits for or
 * allocates a payload: a damaged length is refused at once, not after a
 * wait for bytes that never come.
 *
 * Errors (negative errno), the same from frame_decode() and the decoder:
 *   -EBADMSG   bad magic, header check or checksum mismatch
 *   -EPROTO    a version this build does not speak
 *   -EMSGSIZE  length above the receiver's maximum (refused from the header
 *              alone, before any allocation)
 *   -ENODATA   truncated: frame_decode() was given less than a whole frame
 *              (the incremental decoder just waits for more bytes instead)
 * Decoding never reads outside the bytes it was given. A frame that fails to
 * decode means the stream can no longer be trusted: the connection closes.
 *
 * Sending copies no payload: frame_header_encode() builds the header for a
 * payload given as an iovec (stored batches go out as they are on disk).
 *
 * The payload reader and writer encode request fields, big-endian: u8, u16,
 * u32, u64, i64, raw bytes of a fixed size, bytes (u32 length + bytes) and
 * strings (u16 length + bytes, no NUL inside). Their errors are sticky: after
 * the first failure every call returns it and changes nothing, so a request
 * can be read or written field after field and checked once. */
#ifndef TOPICFS_FRAME_H
#define TOPICFS_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "batch.h"

#define FRAME_MAGIC 0x54465731u /* "TFW1" */
#define FRAME_VERSION 1
#define FRAME_HEADER_SIZE 36
/* Default receive limit: one stored batch of the largest size plus room for
 * the fields of the request that carries it. */
#define FRAME_MAX_PAYLOAD_DEFAULT ((size_t)BATCH_MAX_LENGTH + 65536)

/* Every frame type, in one list so numbers never collide. */
enum frame_type {
    FRAME_AUTH_HELLO = 1, /* auth.h: the handshake */
    FRAME_AUTH_CHALLENGE = 2,
    FRAME_AUTH_PROOF = 3,
    FRAME_AUTH_OK = 4,
    FRAME_AUTH_FAIL = 5,
    /* Requests (server.h): a reply carries its request's type and id, with
     * FRAME_F_REPLY set, and FRAME_F_ERROR when its payload is an i32 errno. */
    FRAME_PING = 16,             /* payload echoed back */
    FRAME_FETCH = 17,            /* proto.h */
    FRAME_OFFSET_FOR_EPOCH = 18, /* proto.h */
    FRAME_PRODUCE = 24,          /* produce_proto.h */
    FRAME_GROUP = 25,            /* group_proto.h: consumer groups at the coordinator */
};

#define FRAME_F_REPLY 1u
#define FRAME_F_ERROR 2u

struct frame_header {
    uint16_t version;
    uint16_t type;
    uint32_t flags;
    uint32_t length;
    uint64_t id;
    uint64_t checksum;
};

/* A decoded frame; payload points into the decoder's (or the caller's)
 * buffer and stays valid until the next feed. */
struct frame {
    struct frame_header h;
    const uint8_t *payload;
};

/* Fills hdr for a payload made of iov[0..iovcnt). -EMSGSIZE if the payload
 * does not fit the u32 length, -ENOMEM. */
int frame_header_encode(uint8_t hdr[FRAME_HEADER_SIZE], uint16_t type, uint32_t flags, uint64_t id,
                        const struct iovec *iov, int iovcnt);

/* A piece of a payload: len bytes at mem, or, with mem NULL, at pos in the
 * open file fd (sent without a copy: conn_send_pieces). */
struct frame_piece {
    const void *mem;
    int fd;
    uint64_t pos;
    size_t len;
};
/* A piece of memory (mem may be NULL when len is 0: it stays a memory piece). */
static inline struct frame_piece frame_piece_mem(const void *mem, size_t len)
{
    return (struct frame_piece){mem ? mem : "", -1, 0, len};
}
/* frame_header_encode for a payload of n pieces. File pieces are read for
 * the checksum in chunks that stay in the CPU's cache: -EIO when a file
 * ends before its piece does, or the errno of pread; -ENOMEM. */
int frame_header_encode_pieces(uint8_t hdr[FRAME_HEADER_SIZE], uint16_t type, uint32_t flags,
                               uint64_t id, const struct frame_piece *p, int n);

/* Header and payload into buf: the frame's size, or -ENOBUFS when cap is too
 * small (buf untouched), -EMSGSIZE as above. */
ssize_t frame_encode(uint8_t *buf, size_t cap, uint16_t type, uint32_t flags, uint64_t id,
                     const void *payload, size_t len);

/* Checks a header (magic, version, header check, length <= max_payload) and
 * fills h: 0 or an error of the table above. */
int frame_header_decode(const uint8_t hdr[FRAME_HEADER_SIZE], size_t max_payload,
                        struct frame_header *h);

/* One whole frame at the start of buf, without copying: 0 with f (payload
 * inside buf) and *frame_len, or an error of the table above. */
int frame_decode(const uint8_t *buf, size_t len, size_t max_payload, struct frame *f,
                 size_t *frame_len);

/* Incremental decoder for a byte stream. The payload buffer grows as bytes
 * arrive, never beyond the announced length, so a peer that announces a
 * large frame must send it to make us hold it. */
struct frame_decoder {
    size_t max_payload;
    uint8_t hdr[FRAME_HEADER_SIZE];
    size_t hdr_have;
    struct frame_header h;
    uint8_t *buf;
    size_t cap;
    size_t have; /* payload bytes received */
    int err;     /* sticky: once malformed, always malformed */
};

/* max_payload 0 means FRAME_MAX_PAYLOAD_DEFAULT. */
void frame_decoder_init(struct frame_decoder *d, size_t max_payload);
void frame_decoder_free(struct frame_decoder *d);

/* Consumes bytes of data up to the end of the first frame they complete
 * (*used says how many). Returns 1 with *f when a frame is complete (valid
 * until the next call), 0 when all of data was taken and more is needed, or
 * a negative errno (the table above, or -ENOMEM), after which the decoder
 * keeps returning it. */
int frame_decoder_feed(struct frame_decoder *d, const uint8_t *data, size_t len, size_t *used,
                       struct frame *f);

/* The same without a copy, for a reader that can put bytes where they go
 * (conn_recv reads large payloads straight into the decoder's buffer):
 * mid-payload, *room > 0 bytes of the payload buffer at *at are free to
 * fill (the buffer grows as with feed); else *room = 0 (the header is not
 * whole: feed it). Returns 0, or the decoder's sticky error. */
int frame_decoder_room(struct frame_decoder *d, uint8_t **at, size_t *room);
/* n (<= room) bytes were written at the room: 1 with *f when the frame is
 * complete, 0 when more is needed, or a negative errno as feed's. */
int frame_decoder_filled(struct frame_decoder *d, size_t n, struct frame *f);

/* True when the decoder holds part of a frame (for telling a peer that
 * closed between frames from one that closed inside a frame). */
int frame_decoder_mid_frame(const struct frame_decoder *d);

/* ---------------------------------------------------------------- payload */

/* Writer into a caller buffer (strings are C strings: no NUL inside by
 * construction). Errors: -ENOBUFS (buffer full; nothing of the field is
 * written), -EMSGSIZE (a string above 65535 bytes, bytes above 4 GiB). */
struct payload_writer {
    uint8_t *buf;
    size_t cap;
    size_t len;
    int err;
};

void payload_writer_init(struct payload_writer *w, void *buf, size_t cap);
int payload_put_u8(struct payload_writer *w, uint8_t v);
int payload_put_u16(struct payload_writer *w, uint16_t v);
int payload_put_u32(struct payload_writer *w, uint32_t v);
int payload_put_u64(struct payload_writer *w, uint64_t v);
int payload_put_i64(struct payload_writer *w, int64_t v);
int payload_put_raw(struct payload_writer *w, const void *p, size_t n);
int payload_put_bytes(struct payload_writer *w, const void *p, size_t n);
int payload_put_str(struct payload_writer *w, const char *s);

/* Reader over a received payload. Every error is -EBADMSG: a field past the
 * end, a length past the end, a NUL inside a string, bytes left over at
 * payload_end(). payload_get_str() copies into out (NUL-terminated) and
 * refuses with -EBADMSG a string that does not fit cap. */
struct payload_reader {
    const uint8_t *p;
    size_t len;
    size_t at;
    int err;
};

void payload_reader_init(struct payload_reader *r, const void *p, size_t len);
int payload_get_u8(struct payload_reader *r, uint8_t *v);
int payload_get_u16(struct payload_reader *r, uint16_t *v);
int payload_get_u32(struct payload_reader *r, uint32_t *v);
int payload_get_u64(struct payload_reader *r, uint64_t *v);
int payload_get_i64(struct payload_reader *r, int64_t *v);
int payload_get_raw(struct payload_reader *r, void *out, size_t n);
/* Bytes without copying: *p points into the payload. */
int payload_get_bytes(struct payload_reader *r, const uint8_t **p, uint32_t *n);
int payload_get_str(struct payload_reader *r, char *out, size_t cap);
/* The sticky error, or -EBADMSG when bytes are left unread: call it after
 * the last field. */
int payload_end(struct payload_reader *r);

#endif
