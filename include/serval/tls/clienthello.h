/* Peeking at a TLS ClientHello without terminating TLS (for TLS passthrough listeners: route by
 * the server name, then relay the bytes untouched).
 *
 * The parser reads the first bytes a client sent — TLS records of type handshake carrying a
 * ClientHello, possibly split over several records — and extracts the server_name extension
 * (RFC 6066 §3, host_name entry). It never allocates, never writes outside the caller's buffer,
 * and reads at most SV_TLS_HELLO_MAX_RECORDS records and SV_TLS_HELLO_MAX_LEN handshake bytes,
 * so every step is bounded whatever the input. Pure function: any thread.
 */
#ifndef SERVAL_TLS_CLIENTHELLO_H
#define SERVAL_TLS_CLIENTHELLO_H

#include <stddef.h>
#include <stdint.h>

#define SV_TLS_HELLO_MAX_RECORDS 8u      /* records a ClientHello may span */
#define SV_TLS_HELLO_MAX_LEN (64u << 10) /* longest ClientHello body accepted */
#define SV_TLS_SNI_MAX 255u              /* longest host_name accepted (DNS limit) */

/* Find the SNI host_name of the ClientHello at the start of in[len] (the client's first bytes,
 * as received). On success writes it, ASCII lower-cased and NUL-terminated, into out[cap]
 * (cap > SV_TLS_SNI_MAX is always enough). Any thread; no allocation.
 *
 * Returns
 *   > 0      the host name length (the ClientHello had a server_name host_name)
 *   0        the ClientHello is complete and has no server_name host_name (out = "")
 *   -EAGAIN  more bytes are needed (everything so far is a valid ClientHello prefix)
 *   -EPROTO  not a TLS ClientHello, malformed, or beyond the bounds above
 *   -ENOSPC  the host name does not fit out[cap]
 * <need>, if not NULL, receives on -EAGAIN a lower bound of the total bytes needed (so the
 * caller can tell a client that will never complete it from one that is slow), else 0. */
int sv_tls_clienthello_sni(const uint8_t *in, size_t len, char *out, size_t cap, size_t *need);

#endif
