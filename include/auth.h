/* auth.h - brokers prove to each other that they hold the cluster secret
 * before any other frame crosses a connection.
 *
 * The secret (cluster.secret.file=PATH) is loaded once: the file must be a
 * regular file owned by root or by the daemon's user, with no permission
 * for group or others (as ssh insists for keys; -EPERM otherwise), 16 to
 * 4096 bytes once trailing newlines are stripped (-EINVAL otherwise). What
 * is kept is a 32-byte key derived from it (BLAKE2b-256 of a label and the
 * secret); the file's bytes are wiped at once. Neither ever goes on the wire.
 *
 * Handshake, four frames (frame.h types), initiator I and responder R:
 *
 *   I -> R  AUTH_HELLO      u32 I's broker id, u8 mode, 32-byte nonce Ni
 *   R -> I  AUTH_CHALLENGE  u32 R's broker id, u8 mode, 32-byte nonce Nr,
 *                           32-byte MAC('R')
 *   I -> R  AUTH_PROOF      32-byte MAC('I')
 *   R -> I  AUTH_OK         (empty)
 *
 *   MAC(d) = HMAC-SHA-256(key, "topicfs-peer-auth" | u16 FRAME_VERSION |
 *            u8 d | u8 mode | u32 I's id | u32 R's id | Ni | Nr)
 *
 * Nonces come from randombytes_buf() and MACs are compared in constant time.
 * Each side's MAC covers the other side's fresh nonce, so a transcript
 * recorded from an earlier session proves nothing in a new one; the
 * direction byte makes a proof sent back to its author fail (reflection);
 * ids, mode and version are bound too. R proves first, so an initiator never
 * computes a MAC for a peer that has not shown it holds the key. Either side
 * that refuses sends AUTH_FAIL (empty) and returns -EACCES; the other side,
 * on AUTH_FAIL, returns -EACCES too. A peer claiming our own broker id is
 * refused the same way. Handshake frames are limited
 * to AUTH_MAX_PAYLOAD bytes, so a peer that has not authenticated cannot make
 * us buffer more.
 *
 * Mode 0, "insecure loopback": without a secret the same handshake runs with
 * an all-zero key (it still exchanges ids), and both ends must be on
 * loopback: auth_handshake() refuses a peer address that is not, and the
 * listener checks auth_peer_allowed() at accept. A broker with a secret and
 * one without refuse each other (the mode byte differs, and the MACs).
 *
 * Errors of auth_handshake(): -EACCES (refused, either side), -EPROTO (a
 * frame of the wrong type), -EBADMSG (a malformed handshake frame), and the
 * errors of conn.h (-ETIMEDOUT when timeout_ms, for the whole handshake,
 * passes). After any error the caller closes the connection. */
#ifndef TOPICFS_AUTH_H
#define TOPICFS_AUTH_H

#include <stdint.h>
#include <sys/socket.h>

#include "conn.h"

#define AUTH_KEY_BYTES 32
#define AUTH_NONCE_BYTES 32
#define AUTH_MAC_BYTES 32
#define AUTH_SECRET_MIN 16
#define AUTH_SECRET_MAX 4096
#define AUTH_MAX_PAYLOAD 128

struct auth_secret {
    uint8_t key[AUTH_KEY_BYTES];
};

/* Loads and checks the secret file (rules above; each refusal logged with
 * its reason): 0, or -EPERM, -EINVAL, or the errno of open/read. On error s
 * is left as it was. */
int auth_load_secret(const char *path, struct auth_secret *s);

/* Wipes the key from memory. */
void auth_secret_wipe(struct auth_secret *s);

/* Runs the handshake on a fresh connection, as initiator (the side that
 * connected) or responder. s NULL: insecure loopback mode. 0 with *peer_id
 * (the id the peer proved), or a negative errno (above). */
int auth_handshake(struct conn *c, const struct auth_secret *s, uint32_t my_id, int initiator,
                   int timeout_ms, uint32_t *peer_id);

/* May a peer at this address take part? Always with a secret; without one,
 * only loopback (127.0.0.0/8, ::1, ::ffff:127.0.0.0/104) and local sockets. */
int auth_peer_allowed(const struct sockaddr *sa, int have_secret);

#endif
