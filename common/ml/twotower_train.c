/* Two-tower training objectives: every objective reads the score matrix
 * S = U·Iᵀ of the batch's users against all its items (positives, then each
 * example's negatives) and writes dS, so one backward path serves them all. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "twotower.h"
#include "twotower_internal.h"

/* A logit that softmax gives probability 0 (a masked false negative). */
#define TT_MASKED_LOGIT (-1e30f)

/* Everything one step computes: inputs, activations and the scores. */
struct tt_step {
    size_t n, m, d; /* users, items (n + n·n_neg), vector width */
    struct tt_input uin, iin;
    struct tt_acts ua, ia;
    struct cascade_twotower_item *items; /* [m] positives then negatives */
    float *S, *dS;                       /* [n, m] */
};

static void step_free(struct tt_step *s)
{
    cascade_twotower__input_free(&s->uin);
    cascade_twotower__input_free(&s->iin);
    cascade_twotower__acts_free(&s->ua);
    cascade_twotower__acts_free(&s->ia);
    free(s->items);
    free(s->S);
    free(s->dS);
}

static int batch_check(enum cascade_twotower_objective obj, const struct cascade_twotower_batch *b,
                       char *err, size_t errlen)
{
    if (b->n == 0 || !b->users || !b->pos || (b->n_neg > 0 && !b->neg)) {
        snprintf(err, errlen, "twotower: empty batch or missing users/positives/negatives");
        return CASCADE_EINVAL;
    }
    switch (obj) {
    case CASCADE_TWOTOWER_POINTWISE:
        return 0;
    case CASCADE_TWOTOWER_TRIPLET_HINGE:
    case CASCADE_TWOTOWER_TRIPLET_LOG:
        if (b->n_neg == 0) {
            snprintf(err, errlen, "twotower: triplet losses need n_neg >= 1");
            return CASCADE_EINVAL;
        }
        return 0;
    case CASCADE_TWOTOWER_LISTWISE:
        if (b->n_neg == 0 && (!b->in_batch || b->n < 2)) {
            snprintf(err, errlen,
                     "twotower: listwise needs negatives: n_neg >= 1 or in_batch with n >= 2");
            return CASCADE_EINVAL;
        }
        return 0;
    }
    snprintf(err, errlen, "twotower: unknown objective %d", (int)obj);
    return CASCADE_EINVAL;
}

/* Forward both towers and S. */
static int step_forward(const cascade_twotower *m, const struct cascade_twotower_batch *b,
                        struct tt_step *s, char *err, size_t errlen)
{
    int rc;
    memset(s, 0, sizeof(*s));
    s->n = b->n;
    s->m = b->n + b->n * b->n_neg;
    s->d = m->cfg.out_dim;
    s->items = malloc(s->m * sizeof(*s->items));
    s->S = malloc(s->n * s->m * sizeof(float));
    s->dS = calloc(s->n * s->m, sizeof(float));
    if (!s->items || !s->S || !s->dS)
        goto nomem;
    memcpy(s->items, b->pos, b->n * sizeof(*s->items));
    if (b->n_neg)
        memcpy(s->items + b->n, b->neg, b->n * b->n_neg * sizeof(*s->items));
    rc = cascade_twotower__user_input(m, b->users, s->n, &s->uin, err, errlen);
    if (rc)
        return rc;
    rc = cascade_twotower__item_input(m, s->items, s->m, &s->iin, err, errlen);
    if (rc)
        return rc;
    if (cascade_twotower__acts_alloc(&m->user, s->n, &s->ua) ||
        cascade_twotower__acts_alloc(&m->item, s->m, &s->ia))
        goto nomem;
    rc = cascade_twotower__tower_forward(&m->user, &s->uin, &s->ua);
    if (!rc)
        rc = cascade_twotower__tower_forward(&m->item, &s->iin, &s->ia);
    if (!rc)
        rc = cascade_nn_matmul_nt_forward(s->ua.out, s->ia.out, s->n, s->m, s->d, s->S);
    if (rc)
        snprintf(err, errlen, "twotower: forward pass failed (batch of %zu users, %zu items)", s->n,
                 s->m);
    return rc;
nomem:
    snprintf(err, errlen, "twotower: out of memory for a batch of %zu examples", b->n);
    return CASCADE_ENOMEM;
}

/* Column of S holding negative j of example i. */
static size_t neg_col(const struct cascade_twotower_batch *b, size_t i, size_t j)
{
    return b->n + i * b->n_neg + j;
}

/* BCE on S/τ: (i, i) with labels[i] (or 1), (i, neg) with 0. */
static int loss_pointwise(const cascade_twotower *m, const struct cascade_twotower_batch *b,
                          struct tt_step *s, bool grad, double *loss)
{
    size_t per = 1 + b->n_neg, total = b->n * per;
    float inv_t = 1.0f / m->cfg.temperature;
    float *z = calloc(total, sizeof(float)), *y = calloc(total, sizeof(float));
    float *dz = grad ? malloc(total * sizeof(float)) : NULL;
    size_t *col = malloc(total * sizeof(size_t));
    int rc = 0;
    if (!z || !y || !col || (grad && !dz)) {
        rc = CASCADE_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < b->n; i++) {
        col[i * per] = i;
        y[i * per] = b->labels ? b->labels[i] : 1.0f;
        for (size_t j = 0; j < b->n_neg; j++) {
            col[i * per + 1 + j] = neg_col(b, i, j);
            y[i * per + 1 + j] = 0.0f;
        }
        for (size_t k = 0; k < per; k++)
            z[i * per + k] = s->S[i * s->m + col[i * per + k]] * inv_t;
    }
    *loss = cascade_nn_bce_logits(z, y, NULL, total, dz);
    for (size_t k = 0; grad && k < total; k++)
        s->dS[(k / per) * s->m + col[k]] += dz[k] * inv_t;
out:
    free(z);
    free(y);
    free(dz);
    free(col);
    return rc;
}

/* Triplets (i, j): cos⁺ = S[i, i], cos⁻ = S[i, neg j]. */
static int loss_triplet(const cascade_twotower *m, enum cascade_twotower_objective obj,
                        const struct cascade_twotower_batch *b, struct tt_step *s, bool grad,
                        double *loss)
{
    size_t total = b->n * b->n_neg;
    float *cp = malloc(total * sizeof(float)), *cn = malloc(total * sizeof(float));
    float *dp = grad ? malloc(total * sizeof(float)) : NULL;
    float *dn = grad ? malloc(total * sizeof(float)) : NULL;
    int rc = 0;
    if (!cp || !cn || (grad && (!dp || !dn))) {
        rc = CASCADE_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < b->n; i++)
        for (size_t j = 0; j < b->n_neg; j++) {
            cp[i * b->n_neg + j] = s->S[i * s->m + i];
            cn[i * b->n_neg + j] = s->S[i * s->m + neg_col(b, i, j)];
        }
    if (obj == CASCADE_TWOTOWER_TRIPLET_HINGE)
        *loss = cascade_nn_triplet_hinge(cp, cn, total, m->cfg.margin, dp, dn);
    else
        *loss = cascade_nn_triplet_log(cp, cn, total, dp, dn);
    for (size_t i = 0; grad && i < b->n; i++)
        for (size_t j = 0; j < b->n_neg; j++) {
            s->dS[i * s->m + i] += dp[i * b->n_neg + j];
            s->dS[i * s->m + neg_col(b, i, j)] += dn[i * b->n_neg + j];
        }
out:
    free(cp);
    free(cn);
    free(dp);
    free(dn);
    return rc;
}

/* Whether item is on example i's exclusion list (never its negative). */
static bool is_excluded(const struct cascade_twotower_batch *b, size_t i, uint32_t item)
{
    if (!b->exclude || !b->n_exclude || !b->exclude[i])
        return false;
    for (size_t k = 0; k < b->n_exclude[i]; k++)
        if (b->exclude[i][k] == item)
            return true;
    return false;
}

/* Row i's logits: the in-batch positives (target i) or its own positive
 * (target 0), then its sampled negatives; each is S/τ − log q. An item
 * equal to the row's positive (a false negative) is masked, and so is an
 * in-batch item on the row's exclusion list. */
static int loss_listwise(const cascade_twotower *m, const struct cascade_twotower_batch *b,
                         struct tt_step *s, bool grad, double *loss)
{
    size_t lead = b->in_batch ? b->n : 1, cols = lead + b->n_neg;
    float inv_t = 1.0f / m->cfg.temperature;
    float *logits = malloc(b->n * cols * sizeof(float));
    float *dl = grad ? malloc(b->n * cols * sizeof(float)) : NULL;
    size_t *col = malloc(b->n * cols * sizeof(size_t));
    uint32_t *target = malloc(b->n * sizeof(uint32_t));
    int rc = 0;
    if (!logits || !col || !target || (grad && !dl)) {
        rc = CASCADE_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < b->n; i++) {
        uint32_t pos_id = b->pos[i].item_id;
        target[i] = b->in_batch ? (uint32_t)i : 0;
        for (size_t c = 0; c < cols; c++) {
            size_t k = b->in_batch ? c : i; /* in-batch: the positive of example c */
            bool is_neg = c >= lead;
            size_t sc = is_neg ? neg_col(b, i, c - lead) : k;
            float logq = is_neg ? (b->neg_logq ? b->neg_logq[i * b->n_neg + (c - lead)] : 0.0f)
                                : (b->pos_logq ? b->pos_logq[k] : 0.0f);
            bool target_col = c == target[i];
            col[i * cols + c] = sc;
            uint32_t id = s->items[sc].item_id;
            if (!target_col && (id == pos_id || (!is_neg && is_excluded(b, i, id))))
                logits[i * cols + c] = TT_MASKED_LOGIT;
            else
                logits[i * cols + c] = s->S[i * s->m + sc] * inv_t - logq;
        }
    }
    *loss = cascade_nn_softmax_xent(logits, b->n, cols, target, dl);
    for (size_t k = 0; grad && k < b->n * cols; k++)
        if (logits[k] != TT_MASKED_LOGIT)
            s->dS[(k / cols) * s->m + col[k]] += dl[k] * inv_t;
out:
    free(logits);
    free(dl);
    free(col);
    free(target);
    return rc;
}

static int objective(const cascade_twotower *m, enum cascade_twotower_objective obj,
                     const struct cascade_twotower_batch *b, struct tt_step *s, bool grad,
                     double *loss, char *err, size_t errlen)
{
    int rc;
    if (obj == CASCADE_TWOTOWER_POINTWISE)
        rc = loss_pointwise(m, b, s, grad, loss);
    else if (obj == CASCADE_TWOTOWER_LISTWISE)
        rc = loss_listwise(m, b, s, grad, loss);
    else
        rc = loss_triplet(m, obj, b, s, grad, loss);
    if (rc)
        snprintf(err, errlen, "twotower: out of memory computing the loss");
    return rc;
}

int cascade_twotower_loss(const cascade_twotower *m, enum cascade_twotower_objective obj,
                          const struct cascade_twotower_batch *b, double *loss, char *err,
                          size_t errlen)
{
    struct tt_step s;
    memset(&s, 0, sizeof(s));
    int rc = batch_check(obj, b, err, errlen);
    if (!rc)
        rc = step_forward(m, b, &s, err, errlen);
    if (!rc)
        rc = objective(m, obj, b, &s, false, loss, err, errlen);
    step_free(&s);
    return rc;
}

int cascade_twotower_backward(cascade_twotower *m, enum cascade_twotower_objective obj,
                              const struct cascade_twotower_batch *b, double *loss, char *err,
                              size_t errlen)
{
    struct tt_step s;
    float *dU = NULL, *dI = NULL;
    memset(&s, 0, sizeof(s));
    int rc = batch_check(obj, b, err, errlen);
    if (!rc)
        rc = step_forward(m, b, &s, err, errlen);
    if (!rc)
        rc = objective(m, obj, b, &s, true, loss, err, errlen);
    if (rc)
        goto out;
    dU = malloc(s.n * s.d * sizeof(float));
    dI = malloc(s.m * s.d * sizeof(float));
    if (!dU || !dI) {
        snprintf(err, errlen, "twotower: out of memory for gradients");
        rc = CASCADE_ENOMEM;
        goto out;
    }
    rc = cascade_nn_matmul_nt_backward(s.ua.out, s.ia.out, s.dS, s.n, s.m, s.d, dU, dI);
    if (!rc)
        rc = cascade_twotower__tower_backward(&m->user, &s.uin, &s.ua, dU);
    if (!rc)
        rc = cascade_twotower__tower_backward(&m->item, &s.iin, &s.ia, dI);
    if (rc)
        snprintf(err, errlen, "twotower: backward pass failed (batch of %zu users, %zu items)", s.n,
                 s.m);
out:
    free(dU);
    free(dI);
    step_free(&s);
    return rc;
}

int cascade_twotower_train_step(cascade_twotower *m, struct cascade_nn_optim *o,
                                enum cascade_twotower_objective obj,
                                const struct cascade_twotower_batch *b, double *loss, char *err,
                                size_t errlen)
{
    int rc = cascade_twotower_backward(m, obj, b, loss, err, errlen);
    if (rc) {
        cascade_nn_params_zero_grad(m->ps);
        return rc;
    }
    rc = cascade_nn_optim_step(o, m->ps);
    if (rc)
        snprintf(err, errlen, "twotower: optimiser step failed (%d)", rc);
    return rc;
}
