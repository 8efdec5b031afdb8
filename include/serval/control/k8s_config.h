/* Kubernetes API connection settings: --kubeconfig FILE or --in-cluster (ServiceAccount files),
 * and the bearer-token source that re-reads a token file. Control thread only.
 */
#ifndef SERVAL_CONTROL_K8S_CONFIG_H
#define SERVAL_CONTROL_K8S_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SV_K8S_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

struct sv_k8s_config {
    char *host;            /* host name or IP literal, without brackets */
    char *port;            /* decimal, "443" when the server URL has none */
    bool host_is_ip;       /* IPv4/IPv6 literal: the peer check uses the certificate's IP SANs */
    char *tls_server_name; /* kubeconfig tls-server-name, NULL if none */
    bool insecure;         /* insecure-skip-tls-verify (kubeconfig or flag) */
    uint8_t *ca_pem;       /* cluster CA (PEM), NULL if none */
    size_t ca_len;
    char *ca_file;         /* where ca_pem came from (re-read on rotation), NULL if inline */
    char *token;           /* static bearer token, NULL if none */
    char *token_file;      /* token file re-read by sv_k8s_token_get, NULL if none */
    uint8_t *cert_pem, *key_pem; /* client certificate/key (PEM), NULL if none */
    size_t cert_len, key_len;
    char *ns;              /* context / ServiceAccount namespace, NULL if unknown */
    char *context;         /* kubeconfig current-context, NULL in-cluster */
};

/* Parse kubeconfig text <text>/<len>: current-context -> cluster (server, certificate-authority
 * path relative to <base_dir>, or -data, tls-server-name, insecure-skip-tls-verify) and user
 * (token, tokenFile, client-certificate[-data], client-key[-data]). exec and auth-provider users
 * are rejected. Returns 0 with *out filled (free with sv_k8s_config_clear), or -EINVAL /
 * -ENOENT (a referenced file) / -ENOMEM with a message in err[errlen]. */
int sv_k8s_config_parse_kubeconfig(const char *text, size_t len, const char *base_dir,
                                   struct sv_k8s_config *out, char *err, size_t errlen);

/* Read and parse the kubeconfig file <path> (sv_k8s_config_parse_kubeconfig). Same contract. */
int sv_k8s_config_load_kubeconfig(const char *path, struct sv_k8s_config *out, char *err,
                                  size_t errlen);

/* In-cluster settings: KUBERNETES_SERVICE_HOST/PORT from the environment, token file, ca.crt and
 * namespace in <sa_dir> (NULL = SV_K8S_SA_DIR); POD_NAMESPACE overrides the namespace file.
 * Returns 0 with *out, or -ENOENT ("not in a cluster") / -ENOMEM with a message in err. */
int sv_k8s_config_in_cluster(const char *sa_dir, struct sv_k8s_config *out, char *err,
                             size_t errlen);

/* Free what a config owns and zero it. NULL is fine. */
void sv_k8s_config_clear(struct sv_k8s_config *c);

/* Decode standard base64 (whitespace ignored, padding optional). Returns 0 with a malloc'd
 * buffer in *out (NUL-terminated, caller frees) and its length, or -EINVAL / -ENOMEM. */
int sv_k8s_base64_decode(const char *in, size_t n, uint8_t **out, size_t *out_len);

/* Bearer token source: a static token, or a file re-read when the cached copy is older than
 * <max_age_ms> (60 s) or after sv_k8s_token_invalidate (a 401). A failed read keeps the old
 * token. */
struct sv_k8s_token {
    const char *file;     /* borrowed from the config, NULL for a static token */
    char *value;          /* owned; NULL when none could be read */
    uint64_t read_ms;     /* monotonic time of the last read, 0 = never */
    uint64_t max_age_ms;
    uint64_t reads;       /* file reads so far */
};

/* Set up <t> from <c> (borrows c->token_file; copies c->token). Returns 0 or -ENOMEM. */
int sv_k8s_token_init(struct sv_k8s_token *t, const struct sv_k8s_config *c);

/* The current token (borrowed until the next call), re-reading the file when due, or NULL when
 * there is no token. <now_ms> is the monotonic clock. */
const char *sv_k8s_token_get(struct sv_k8s_token *t, uint64_t now_ms);

/* Force a re-read on the next sv_k8s_token_get (after a 401). */
void sv_k8s_token_invalidate(struct sv_k8s_token *t);

void sv_k8s_token_clear(struct sv_k8s_token *t);

#endif
