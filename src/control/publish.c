/* Translate -> publish -> /config document, shared by the folder and Kubernetes controllers. */
#include "control/publish.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "serval/routing/generation.h"

void sv_publisher_init(struct sv_publisher *p, struct sv_generation_domain *dom)
{
    memset(p, 0, sizeof(*p));
    p->dom = dom;
    pthread_mutex_init(&p->_mu, NULL);
}

void sv_publisher_fini(struct sv_publisher *p)
{
    sv_tx_index_free(p->_idx);
    p->_idx = NULL;
    free(p->_json);
    p->_json = NULL;
    pthread_mutex_destroy(&p->_mu);
}

static uint64_t publish(struct sv_publisher *p, struct sv_generation *gen)
{
    p->generation_id = sv_generation_publish(p->dom, gen);
    p->published++;
    return p->generation_id;
}

uint64_t sv_publisher_publish(struct sv_publisher *p, struct sv_generation *gen)
{
    p->_idx_current = false; /* a generation we know nothing about */
    return publish(p, gen);
}

uint64_t sv_publisher_publish_endpoints(struct sv_publisher *p, struct sv_generation *gen,
                                        const struct sv_store *store)
{
    if (p->_idx_current)
        sv_tx_index_endpoints_changed(p->_idx, store);
    return publish(p, gen);
}

int sv_publisher_translate(struct sv_publisher *p, struct sv_store *store,
                           const struct sv_translate_opts *opts, struct sv_status **status,
                           char *err, size_t errlen)
{
    struct sv_generation *gen = NULL;
    struct sv_tx_index *idx = NULL;
    *status = NULL;
    int rc = sv_translate_indexed(store, opts, &gen, status, &idx, err, errlen);
    if (rc != 0)
        return rc;
    publish(p, gen);
    sv_tx_index_free(p->_idx);
    p->_idx = idx;
    p->_idx_current = idx != NULL;
    p->compact_pending = false;
    return 0;
}

int sv_publisher_translate_routes(struct sv_publisher *p, struct sv_store *store,
                                  const struct sv_translate_opts *opts,
                                  struct sv_translate_routes_info *info, char *err,
                                  size_t errlen)
{
    memset(info, 0, sizeof(*info));
    if (!p->_idx || !p->_idx_current)
        return -EAGAIN;
    const struct sv_generation *base = sv_generation_current(p->dom);
    if (!base)
        return -EAGAIN;
    struct sv_generation *gen = NULL;
    int rc = sv_translate_routes(store, opts, p->_idx, base, &gen, info, err, errlen);
    if (rc != 0)
        return rc;
    publish(p, gen);
    p->_idx_current = false; /* overlays do not stack: the next change translates in full */
    p->compact_pending = true;
    p->overlays++;
    return 0;
}

void sv_publisher_set_doc(struct sv_publisher *p, cJSON *root)
{
    char *text = root ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    if (!text)
        return; /* keep the previous document */
    pthread_mutex_lock(&p->_mu);
    free(p->_json);
    p->_json = text;
    pthread_mutex_unlock(&p->_mu);
}

char *sv_publisher_doc(struct sv_publisher *p)
{
    pthread_mutex_lock(&p->_mu);
    char *copy = p->_json ? strdup(p->_json) : NULL;
    pthread_mutex_unlock(&p->_mu);
    return copy;
}
