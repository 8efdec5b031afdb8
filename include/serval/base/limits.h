/* Compile-time limits shared by modules. */
#ifndef SERVAL_BASE_LIMITS_H
#define SERVAL_BASE_LIMITS_H

/* Highest number of worker threads (readers of routing generations). */
#define SV_MAX_WORKERS 64

/* Default limit of a request or response header section (431 beyond it). */
#define SV_DEFAULT_MAX_HEADER_BYTES (64 * 1024)

/* Highest number of header fields in one message (431 beyond it). */
#define SV_MAX_HEADERS 256

#endif
