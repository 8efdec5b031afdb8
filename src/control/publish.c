/* Translate -> publish -> /config document, shared by the folder and Kubernetes controllers. */
#include "control/publish.h"

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
    free(p->_json);
    p->_json = NULL;
    pthread_mutex_destroy(&p->_mu);
}

uint64_t sv_publisher_publish(struct sv_publisher *p, struct sv_generation *gen)
{
    p->generation_id = sv_generation_publish(p->dom, gen);
    p->published++;
    return p->generation_id;
}

int sv_publisher_translate(struct sv_publisher *p, struct sv_store *store,
                           const struct sv_translate_opts *opts, struct sv_status **status,
                           char *err, size_t errlen)
{
    struct sv_generation *gen = NULL;
    *status = NULL;
    int rc = sv_translate(store, opts, &gen, status, err, errlen);
    if (rc != 0)
        return rc;
    sv_publisher_publish(p, gen);
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
