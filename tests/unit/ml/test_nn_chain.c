/* Unit tests that chain common/ml/nn pieces the way the learned models will:
 * a two-tower step (bags → dense → L2 norm → cosine → triplet log loss, and
 * in-batch softmax over pairwise scores) and an MMoE step (experts, softmax
 * gate with expert dropout, mixture, tower, BCE). Whole-model gradients are
 * checked against central finite differences. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "nn.h"
#include "test_nn_check.h"

#define H 2e-2f

/* ---- two-tower ---- */

enum { TB = 4, TDIM = 6, TOUT = 5, USERS = 9, ITEMS = 11 };

struct tower {
    struct cascade_nn_embedding emb;
    struct cascade_nn_dense fc;
};

struct two_tower {
    cascade_nn_params *ps;
    struct tower user, item;
    struct cascade_nn_bags user_bags, pos, neg;
    /* activations kept for the backward pass */
    float ue[TB * TDIM], uh[TB * TOUT], u[TB * TOUT], un[TB];
    float pe[TB * TDIM], ph[TB * TOUT], p[TB * TOUT], pn[TB];
    float ne[TB * TDIM], nh[TB * TOUT], n[TB * TOUT], nn[TB];
    float cos_pos[TB], cos_neg[TB];
    bool in_batch;
};

static const size_t user_offsets[TB + 1] = {0, 2, 3, 6, 7};
static const uint32_t user_ids[7] = {1, 4, 8, 0, 2, 4, 5};
static const size_t one_offsets[TB + 1] = {0, 1, 2, 3, 4};
static const uint32_t pos_ids[TB] = {3, 10, 0, 7};
static const uint32_t neg_ids[TB] = {5, 3, 9, 1};

static void tower_init(struct tower *t, cascade_nn_params *ps, const char *name, size_t num,
                       struct cascade_rng *rng)
{
    char emb[64], fc[64];
    snprintf(emb, sizeof(emb), "%s_emb", name);
    snprintf(fc, sizeof(fc), "%s_fc", name);
    assert_int_equal(cascade_nn_embedding_init(&t->emb, ps, emb, num, TDIM, CASCADE_NN_POOL_MEAN,
                                               0.5f, rng, NULL, 0),
                     0);
    assert_int_equal(cascade_nn_dense_init(&t->fc, ps, fc, TDIM, TOUT,
                                           CASCADE_NN_INIT_XAVIER_UNIFORM, rng, NULL, 0),
                     0);
}

static void tower_forward(const struct tower *t, const struct cascade_nn_bags *bags, float *e,
                          float *h, float *out, float *norms)
{
    assert_int_equal(cascade_nn_embedding_forward(&t->emb, bags, e), 0);
    assert_int_equal(cascade_nn_dense_forward(&t->fc, e, TB, h), 0);
    cascade_nn_l2norm_forward(h, TB, TOUT, out, norms);
}

static void tower_backward(struct tower *t, const struct cascade_nn_bags *bags, const float *e,
                           const float *out, const float *norms, float *dout)
{
    float de[TB * TDIM];
    cascade_nn_l2norm_backward(out, norms, dout, TB, TOUT, dout);
    assert_int_equal(cascade_nn_dense_backward(&t->fc, e, dout, TB, de), 0);
    assert_int_equal(cascade_nn_embedding_backward(&t->emb, bags, de), 0);
}

/* In-batch softmax: scores u·pᵀ / τ, the positive of row i is column i. */
static double in_batch_loss(struct two_tower *m, float *dscores)
{
    float scores[TB * TB];
    uint32_t diag[TB];
    assert_int_equal(cascade_nn_matmul_nt_forward(m->u, m->p, TB, TB, TOUT, scores), 0);
    for (size_t i = 0; i < TB * TB; i++)
        scores[i] /= 0.1f;
    for (uint32_t i = 0; i < TB; i++)
        diag[i] = i;
    return cascade_nn_softmax_xent(scores, TB, TB, diag, dscores);
}

static double two_tower_forward(void *p)
{
    struct two_tower *m = p;
    tower_forward(&m->user, &m->user_bags, m->ue, m->uh, m->u, m->un);
    tower_forward(&m->item, &m->pos, m->pe, m->ph, m->p, m->pn);
    if (m->in_batch)
        return in_batch_loss(m, NULL);
    tower_forward(&m->item, &m->neg, m->ne, m->nh, m->n, m->nn);
    cascade_nn_rowdot_forward(m->u, m->p, TB, TOUT, m->cos_pos);
    cascade_nn_rowdot_forward(m->u, m->n, TB, TOUT, m->cos_neg);
    return cascade_nn_triplet_log(m->cos_pos, m->cos_neg, TB, NULL, NULL);
}

/* Triplet backward: u feeds both cosines, so its two gradients are summed. */
static void triplet_backward(struct two_tower *m, float *du, float *dp, float *dn)
{
    float dpos[TB], dneg[TB], du_neg[TB * TOUT];
    cascade_nn_triplet_log(m->cos_pos, m->cos_neg, TB, dpos, dneg);
    cascade_nn_rowdot_backward(m->u, m->p, dpos, TB, TOUT, du, dp);
    cascade_nn_rowdot_backward(m->u, m->n, dneg, TB, TOUT, du_neg, dn);
    for (size_t i = 0; i < TB * TOUT; i++)
        du[i] += du_neg[i];
}

static void in_batch_backward(struct two_tower *m, float *du, float *dp)
{
    float dscores[TB * TB];
    in_batch_loss(m, dscores);
    for (size_t i = 0; i < TB * TB; i++)
        dscores[i] /= 0.1f;
    assert_int_equal(cascade_nn_matmul_nt_backward(m->u, m->p, dscores, TB, TB, TOUT, du, dp), 0);
}

static void two_tower_backward(struct two_tower *m)
{
    float du[TB * TOUT], dp[TB * TOUT], dn[TB * TOUT];
    two_tower_forward(m);
    if (m->in_batch) {
        in_batch_backward(m, du, dp);
    } else {
        triplet_backward(m, du, dp, dn);
        tower_backward(&m->item, &m->neg, m->ne, m->n, m->nn, dn);
    }
    tower_backward(&m->item, &m->pos, m->pe, m->p, m->pn, dp);
    tower_backward(&m->user, &m->user_bags, m->ue, m->u, m->un, du);
}

static void check_two_tower(bool in_batch)
{
    struct cascade_rng rng;
    cascade_rng_seed(&rng, 40);
    struct two_tower m = {.in_batch = in_batch};
    m.ps = cascade_nn_params_create();
    tower_init(&m.user, m.ps, "user", USERS, &rng);
    tower_init(&m.item, m.ps, "item", ITEMS, &rng);
    m.user_bags = (struct cascade_nn_bags){.batch = TB, .offsets = user_offsets, .ids = user_ids};
    m.pos = (struct cascade_nn_bags){.batch = TB, .offsets = one_offsets, .ids = pos_ids};
    m.neg = (struct cascade_nn_bags){.batch = TB, .offsets = one_offsets, .ids = neg_ids};
    two_tower_backward(&m);
    for (size_t i = 0; i < cascade_nn_params_count(m.ps); i++) {
        struct cascade_nn_param *p = cascade_nn_params_at(m.ps, i);
        assert_true(nn_gradcheck(p->name, two_tower_forward, &m, p->value, p->size, p->grad, H) <
                    NN_GRAD_TOL);
    }
    /* The item table got gradients for the positives and negatives only. */
    assert_int_equal(m.item.emb.table->n_touched, in_batch ? 4 : 7);
    cascade_nn_params_destroy(m.ps);
}

static void test_two_tower_triplet(void **state)
{
    (void)state;
    check_two_tower(false);
}

static void test_two_tower_in_batch_softmax(void **state)
{
    (void)state;
    check_two_tower(true);
}

/* ---- MMoE: E experts (dense + ReLU), a softmax gate, one tower ---- */

enum { MB = 5, MIN = 6, ME = 3, MW = 4 };

struct mmoe {
    cascade_nn_params *ps;
    struct cascade_nn_dense experts[ME], gate, tower;
    float x[MB * MIN], y[MB];
    uint8_t keep[MB * ME];
    float eo[ME][MB * MW], stacked[MB * ME * MW], gl[MB * ME], g[MB * ME], mix[MB * MW], z[MB];
};

static double mmoe_forward(void *p)
{
    struct mmoe *m = p;
    for (size_t e = 0; e < ME; e++) {
        assert_int_equal(cascade_nn_dense_forward(&m->experts[e], m->x, MB, m->eo[e]), 0);
        cascade_nn_relu_forward(m->eo[e], MB * MW, m->eo[e]);
        for (size_t b = 0; b < MB; b++) /* torch.stack(dim=1) */
            memcpy(m->stacked + (b * ME + e) * MW, m->eo[e] + b * MW, MW * sizeof(float));
    }
    assert_int_equal(cascade_nn_dense_forward(&m->gate, m->x, MB, m->gl), 0);
    cascade_nn_softmax_forward(m->gl, m->keep, MB, ME, m->g);
    cascade_nn_mixture_forward(m->g, m->stacked, MB, ME, MW, m->mix);
    assert_int_equal(cascade_nn_dense_forward(&m->tower, m->mix, MB, m->z), 0);
    return cascade_nn_bce_logits(m->z, m->y, NULL, MB, NULL);
}

static void mmoe_backward(struct mmoe *m, float *dx)
{
    float dz[MB], dmix[MB * MW], dg[MB * ME], dstacked[MB * ME * MW], de[MB * MW],
        dx_part[MB * MIN];
    mmoe_forward(m);
    cascade_nn_bce_logits(m->z, m->y, NULL, MB, dz);
    assert_int_equal(cascade_nn_dense_backward(&m->tower, m->mix, dz, MB, dmix), 0);
    cascade_nn_mixture_backward(m->g, m->stacked, dmix, MB, ME, MW, dg, dstacked);
    cascade_nn_softmax_backward(m->g, dg, MB, ME, dg);
    assert_int_equal(cascade_nn_dense_backward(&m->gate, m->x, dg, MB, dx), 0);
    for (size_t e = 0; e < ME; e++) {
        for (size_t b = 0; b < MB; b++)
            memcpy(de + b * MW, dstacked + (b * ME + e) * MW, MW * sizeof(float));
        cascade_nn_relu_backward(m->eo[e], de, MB * MW, de);
        assert_int_equal(cascade_nn_dense_backward(&m->experts[e], m->x, de, MB, dx_part), 0);
        for (size_t i = 0; i < MB * MIN; i++) /* x feeds the gate and every expert */
            dx[i] += dx_part[i];
    }
}

static void mmoe_init(struct mmoe *m, struct cascade_rng *rng)
{
    m->ps = cascade_nn_params_create();
    for (size_t e = 0; e < ME; e++) {
        char name[32];
        snprintf(name, sizeof(name), "experts.%zu.0", e);
        assert_int_equal(cascade_nn_dense_init(&m->experts[e], m->ps, name, MIN, MW,
                                               CASCADE_NN_INIT_HE_UNIFORM, rng, NULL, 0),
                         0);
        nn_fill(rng, m->experts[e].bias->value, MW, 0.05f, 0.3f);
    }
    assert_int_equal(cascade_nn_dense_init(&m->gate, m->ps, "gates.0", MIN, ME,
                                           CASCADE_NN_INIT_XAVIER_UNIFORM, rng, NULL, 0),
                     0);
    assert_int_equal(cascade_nn_dense_init(&m->tower, m->ps, "towers.0.0", MW, 1,
                                           CASCADE_NN_INIT_XAVIER_UNIFORM, rng, NULL, 0),
                     0);
    nn_fill(rng, m->x, MB * MIN, -1, 1);
    for (size_t b = 0; b < MB; b++)
        m->y[b] = (float)(b % 2);
    cascade_nn_expert_dropout_mask(rng, 0.3f, MB, ME, m->keep);
}

static void test_mmoe_gradients(void **state)
{
    (void)state;
    struct cascade_rng rng;
    cascade_rng_seed(&rng, 41);
    static struct mmoe m;
    mmoe_init(&m, &rng);
    float dx[MB * MIN];
    mmoe_backward(&m, dx);
    assert_true(nn_gradcheck("mmoe x", mmoe_forward, &m, m.x, MB * MIN, dx, H) < NN_GRAD_TOL);
    for (size_t i = 0; i < cascade_nn_params_count(m.ps); i++) {
        struct cascade_nn_param *p = cascade_nn_params_at(m.ps, i);
        assert_true(nn_gradcheck(p->name, mmoe_forward, &m, p->value, p->size, p->grad, H) <
                    NN_GRAD_TOL);
    }
    cascade_nn_params_destroy(m.ps);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_tower_triplet),
        cmocka_unit_test(test_two_tower_in_batch_softmax),
        cmocka_unit_test(test_mmoe_gradients),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
