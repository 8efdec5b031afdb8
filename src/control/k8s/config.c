/* Kubernetes connection settings: kubeconfig, in-cluster files, bearer-token source. */
#include "serval/control/k8s_config.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serval/control/yaml.h"

#define MAX_FILE_BYTES (4u << 20)

/* Read a whole file (bounded) into a NUL-terminated malloc'd buffer. Returns 0 or -errno. */
static int read_file(const char *path, char **out, size_t *len)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    char *buf = malloc(MAX_FILE_BYTES + 1);
    if (!buf) {
        fclose(f);
        return -ENOMEM;
    }
    size_t n = fread(buf, 1, MAX_FILE_BYTES + 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || n > MAX_FILE_BYTES) {
        free(buf);
        return bad ? -EIO : -EFBIG;
    }
    buf[n] = 0;
    *out = buf;
    if (len)
        *len = n;
    return 0;
}

static int b64v(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

int sv_k8s_base64_decode(const char *in, size_t n, uint8_t **out, size_t *out_len)
{
    uint8_t *buf = malloc(n / 4 * 3 + 4);
    if (!buf)
        return -ENOMEM;
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    bool pad = false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
            continue;
        if (c == '=') {
            pad = true;
            continue;
        }
        int v = b64v(c);
        if (v < 0 || pad) {
            free(buf);
            return -EINVAL;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[o++] = (uint8_t)(acc >> bits);
        }
    }
    if (bits >= 6) { /* one dangling sextet cannot encode a byte */
        free(buf);
        return -EINVAL;
    }
    buf[o] = 0;
    *out = buf;
    *out_len = o;
    return 0;
}

void sv_k8s_config_clear(struct sv_k8s_config *c)
{
    if (!c)
        return;
    free(c->host);
    free(c->port);
    free(c->tls_server_name);
    free(c->ca_pem);
    free(c->ca_file);
    free(c->token);
    free(c->token_file);
    free(c->cert_pem);
    free(c->key_pem);
    free(c->ns);
    free(c->context);
    memset(c, 0, sizeof(*c));
}

/* Split "https://host[:port][/]" into host/port. Returns 0 or -EINVAL. */
static int parse_server(const char *url, struct sv_k8s_config *c, char *err, size_t errlen)
{
    if (strncmp(url, "https://", 8) != 0) {
        snprintf(err, errlen, "server \"%s\": only https:// is supported", url);
        return -EINVAL;
    }
    const char *h = url + 8;
    const char *end = h + strcspn(h, "/?#");
    const char *hs = h, *he, *ps = NULL;
    if (*h == '[') {
        hs = h + 1;
        he = memchr(hs, ']', (size_t)(end - hs));
        if (!he) {
            snprintf(err, errlen, "server \"%s\": unterminated [", url);
            return -EINVAL;
        }
        if (he + 1 < end && he[1] == ':')
            ps = he + 2;
    } else {
        he = memchr(hs, ':', (size_t)(end - hs));
        if (he)
            ps = he + 1;
        else
            he = end;
    }
    if (he == hs) {
        snprintf(err, errlen, "server \"%s\": no host", url);
        return -EINVAL;
    }
    c->host = strndup(hs, (size_t)(he - hs));
    c->port = ps ? strndup(ps, (size_t)(end - ps)) : strdup("443");
    if (!c->host || !c->port)
        return -ENOMEM;
    if (!c->port[0] || strspn(c->port, "0123456789") != strlen(c->port) || atoi(c->port) < 1 ||
        atoi(c->port) > 65535) {
        snprintf(err, errlen, "server \"%s\": bad port", url);
        return -EINVAL;
    }
    unsigned char tmp[16];
    c->host_is_ip = inet_pton(AF_INET, c->host, tmp) == 1 || inet_pton(AF_INET6, c->host, tmp) == 1;
    return 0;
}

/* The "<what>" entry named <name> in the list <key> of <root> ({name, <what>: {...}}). */
static const cJSON *named(const cJSON *root, const char *key, const char *what, const char *name)
{
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, key);
    const cJSON *it;
    cJSON_ArrayForEach(it, list)
    {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(it, "name");
        if (cJSON_IsString(n) && strcmp(n->valuestring, name) == 0)
            return cJSON_GetObjectItemCaseSensitive(it, what);
    }
    return NULL;
}

static const char *str_of(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : NULL;
}

static char *join_path(const char *base, const char *p)
{
    if (p[0] == '/' || !base || !base[0])
        return strdup(p);
    size_t n = strlen(base) + strlen(p) + 2;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s/%s", base, p);
    return s;
}

/* Load PEM material from "<key>-data" (base64) or "<key>" (a path). 0 when neither is given. */
static int load_pem(const cJSON *o, const char *key, const char *base_dir, uint8_t **out,
                    size_t *len, char **path_out, char *err, size_t errlen)
{
    char dk[64];
    snprintf(dk, sizeof(dk), "%s-data", key);
    const char *data = str_of(o, dk);
    if (data) {
        int rc = sv_k8s_base64_decode(data, strlen(data), out, len);
        if (rc == -EINVAL)
            snprintf(err, errlen, "%s: invalid base64", dk);
        return rc;
    }
    const char *path = str_of(o, key);
    if (!path)
        return 0;
    char *full = join_path(base_dir, path);
    if (!full)
        return -ENOMEM;
    char *buf;
    int rc = read_file(full, &buf, len);
    if (rc < 0)
        snprintf(err, errlen, "%s %s: %s", key, full, strerror(-rc));
    if (rc == 0) {
        *out = (uint8_t *)buf;
        if (path_out) {
            *path_out = full;
            full = NULL;
        }
    }
    free(full);
    return rc;
}

int sv_k8s_config_parse_kubeconfig(const char *text, size_t len, const char *base_dir,
                                   struct sv_k8s_config *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    cJSON *docs = NULL;
    char yerr[256];
    int rc = sv_yaml_parse(text, len, &docs, yerr, sizeof(yerr));
    if (rc < 0) {
        snprintf(err, errlen, "kubeconfig: %s", rc == -ENOMEM ? "out of memory" : yerr);
        return rc;
    }
    const cJSON *root = cJSON_GetArrayItem(docs, 0);
    rc = -EINVAL;
    const char *cur = str_of(root, "current-context");
    if (!cJSON_IsObject(root) || !cur) {
        snprintf(err, errlen, "kubeconfig: no current-context");
        goto out;
    }
    const cJSON *ctx = named(root, "contexts", "context", cur);
    if (!cJSON_IsObject(ctx)) {
        snprintf(err, errlen, "kubeconfig: context \"%s\" not found", cur);
        goto out;
    }
    const char *cname = str_of(ctx, "cluster"), *uname = str_of(ctx, "user");
    const cJSON *cl = cname ? named(root, "clusters", "cluster", cname) : NULL;
    if (!cJSON_IsObject(cl)) {
        snprintf(err, errlen, "kubeconfig: cluster \"%s\" not found", cname ? cname : "");
        goto out;
    }
    const cJSON *user = uname ? named(root, "users", "user", uname) : NULL;
    if (uname && !cJSON_IsObject(user)) {
        snprintf(err, errlen, "kubeconfig: user \"%s\" not found", uname);
        goto out;
    }
    const char *server = str_of(cl, "server");
    if (!server) {
        snprintf(err, errlen, "kubeconfig: cluster \"%s\" has no server", cname);
        goto out;
    }
    if ((rc = parse_server(server, out, err, errlen)) < 0)
        goto out;
    rc = -ENOMEM;
    if (!(out->context = strdup(cur)))
        goto out;
    if (str_of(ctx, "namespace") && !(out->ns = strdup(str_of(ctx, "namespace"))))
        goto out;
    if (str_of(cl, "tls-server-name") &&
        !(out->tls_server_name = strdup(str_of(cl, "tls-server-name"))))
        goto out;
    out->insecure = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cl, "insecure-skip-tls-verify"));
    if (cJSON_GetObjectItemCaseSensitive(cl, "proxy-url")) {
        snprintf(err, errlen, "kubeconfig: proxy-url is not supported");
        rc = -EINVAL;
        goto out;
    }
    if ((rc = load_pem(cl, "certificate-authority", base_dir, &out->ca_pem, &out->ca_len,
                       &out->ca_file, err, errlen)) < 0)
        goto out;
    if (user) {
        if (cJSON_GetObjectItemCaseSensitive(user, "exec") ||
            cJSON_GetObjectItemCaseSensitive(user, "auth-provider")) {
            snprintf(err, errlen,
                     "kubeconfig: user \"%s\" uses %s, which needs an external plugin and is not "
                     "supported; use a token, tokenFile or a client certificate",
                     uname, cJSON_GetObjectItemCaseSensitive(user, "exec") ? "exec" : "auth-provider");
            rc = -EINVAL;
            goto out;
        }
        if (cJSON_GetObjectItemCaseSensitive(user, "username")) {
            snprintf(err, errlen, "kubeconfig: basic auth (username/password) is not supported");
            rc = -EINVAL;
            goto out;
        }
        rc = -ENOMEM;
        if (str_of(user, "token") && !(out->token = strdup(str_of(user, "token"))))
            goto out;
        if (str_of(user, "tokenFile") &&
            !(out->token_file = join_path(base_dir, str_of(user, "tokenFile"))))
            goto out;
        if ((rc = load_pem(user, "client-certificate", base_dir, &out->cert_pem, &out->cert_len,
                           NULL, err, errlen)) < 0)
            goto out;
        if ((rc = load_pem(user, "client-key", base_dir, &out->key_pem, &out->key_len, NULL, err,
                           errlen)) < 0)
            goto out;
        if (!out->cert_pem != !out->key_pem) {
            snprintf(err, errlen, "kubeconfig: client-certificate and client-key go together");
            rc = -EINVAL;
            goto out;
        }
    }
    rc = 0;
out:
    cJSON_Delete(docs);
    if (rc < 0) {
        if (rc == -ENOMEM)
            snprintf(err, errlen, "kubeconfig: out of memory");
        sv_k8s_config_clear(out);
    }
    return rc;
}

int sv_k8s_config_load_kubeconfig(const char *path, struct sv_k8s_config *out, char *err,
                                  size_t errlen)
{
    memset(out, 0, sizeof(*out));
    char *text;
    size_t len;
    int rc = read_file(path, &text, &len);
    if (rc < 0) {
        snprintf(err, errlen, "--kubeconfig %s: %s", path, strerror(-rc));
        return rc;
    }
    char *dir = strdup(path);
    if (!dir) {
        free(text);
        return -ENOMEM;
    }
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    else
        strcpy(dir, ".");
    rc = sv_k8s_config_parse_kubeconfig(text, len, dir, out, err, errlen);
    free(dir);
    free(text);
    return rc;
}

static char *trimmed(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = 0;
    size_t lead = strspn(s, " \t\r\n");
    if (lead)
        memmove(s, s + lead, strlen(s + lead) + 1);
    return s;
}

int sv_k8s_config_in_cluster(const char *sa_dir, struct sv_k8s_config *out, char *err,
                             size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (!sa_dir)
        sa_dir = SV_K8S_SA_DIR;
    const char *host = getenv("KUBERNETES_SERVICE_HOST"), *port = getenv("KUBERNETES_SERVICE_PORT");
    if (!host || !*host || !port || !*port) {
        snprintf(err, errlen, "--in-cluster: not in a cluster (KUBERNETES_SERVICE_HOST and "
                              "KUBERNETES_SERVICE_PORT must be set)");
        return -ENOENT;
    }
    char url[512];
    snprintf(url, sizeof(url), strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host, port);
    int rc = parse_server(url, out, err, errlen);
    if (rc < 0)
        goto fail;
    char path[1024];
    snprintf(path, sizeof(path), "%s/token", sa_dir);
    rc = -ENOMEM;
    if (!(out->token_file = strdup(path)))
        goto fail;
    snprintf(path, sizeof(path), "%s/ca.crt", sa_dir);
    char *buf = NULL;
    size_t len = 0;
    int frc = read_file(path, &buf, &len);
    if (frc == -ENOMEM)
        goto fail;
    if (frc < 0) {
        snprintf(err, errlen, "--in-cluster: %s: %s", path, strerror(-frc));
        rc = frc;
        goto fail;
    }
    out->ca_pem = (uint8_t *)buf;
    out->ca_len = len;
    if (!(out->ca_file = strdup(path)))
        goto fail;
    const char *pns = getenv("POD_NAMESPACE");
    if (pns && *pns) {
        if (!(out->ns = strdup(pns)))
            goto fail;
    } else {
        snprintf(path, sizeof(path), "%s/namespace", sa_dir);
        if (read_file(path, &buf, NULL) == 0)
            out->ns = trimmed(buf);
    }
    return 0;
fail:
    if (rc == -ENOMEM)
        snprintf(err, errlen, "--in-cluster: out of memory");
    sv_k8s_config_clear(out);
    return rc;
}

int sv_k8s_token_init(struct sv_k8s_token *t, const struct sv_k8s_config *c)
{
    memset(t, 0, sizeof(*t));
    t->max_age_ms = 60000;
    t->file = c->token_file;
    if (!t->file && c->token && !(t->value = strdup(c->token)))
        return -ENOMEM;
    return 0;
}

const char *sv_k8s_token_get(struct sv_k8s_token *t, uint64_t now_ms)
{
    if (t->file && (t->read_ms == 0 || now_ms - t->read_ms >= t->max_age_ms)) {
        char *buf;
        t->reads++;
        t->read_ms = now_ms ? now_ms : 1;
        if (read_file(t->file, &buf, NULL) == 0) {
            trimmed(buf);
            if (buf[0]) {
                free(t->value);
                t->value = buf;
            } else {
                free(buf); /* an empty file (mid-rotation): keep the old token */
            }
        }
    }
    return t->value;
}

void sv_k8s_token_invalidate(struct sv_k8s_token *t)
{
    t->read_ms = 0;
}

void sv_k8s_token_clear(struct sv_k8s_token *t)
{
    free(t->value);
    memset(t, 0, sizeof(*t));
}
