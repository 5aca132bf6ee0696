/* Human-readable rendering of a Recommend answer: a header with the request
 * id and experiment assignment, one table row per item, then degrade reasons
 * and (with --debug) the per-stage trace. */
#include <string.h>

#include "cli.h"
#include "error.h"

static void print_experiments(FILE *out, const Cascade__V1__ExperimentContext *exp)
{
    if (exp == NULL || exp->n_layers == 0) {
        fprintf(out, "experiments: none configured\n");
        return;
    }
    fprintf(out, "experiments (%u buckets):\n", exp->bucket_count);
    for (size_t i = 0; i < exp->n_layers; i++) {
        const Cascade__V1__LayerAssignment *l = exp->layers[i];
        fprintf(out, "  %-10s bucket %4u  %s", l->layer, l->bucket, l->experiment);
        for (size_t p = 0; p < l->n_params; p++)
            fprintf(out, "%s%s=%s", p == 0 ? "  {" : ", ", l->params[p]->key, l->params[p]->value);
        fprintf(out, "%s\n", l->n_params ? "}" : "");
    }
}

/* "ranked", "exploration", "inserted:<source>". */
static void print_reason(FILE *out, const Cascade__V1__RecommendedItem *it)
{
    switch (it->reason) {
    case CASCADE__V1__ITEM_REASON__ITEM_REASON_RANKED:
        fputs("ranked", out);
        break;
    case CASCADE__V1__ITEM_REASON__ITEM_REASON_EXPLORATION:
        fputs("exploration", out);
        break;
    case CASCADE__V1__ITEM_REASON__ITEM_REASON_INSERTED:
        fprintf(out, "inserted:%s", it->source ? it->source : "");
        break;
    default:
        fputs("-", out);
    }
}

static void print_items(FILE *out, const Cascade__V1__RecommendResponse *resp)
{
    fprintf(out, "%4s  %-20s %10s %10s %10s %8s %9s %10s  %-24s %s\n", "pos", "item", "score",
            "rank", "rerank", "p_click", "category", "author", "channels", "reason");
    for (size_t i = 0; i < resp->n_items; i++) {
        const Cascade__V1__RecommendedItem *it = resp->items[i];
        char p_click[16] = "-", category[16] = "-", author[24] = "-", channels[256] = "-";
        size_t off = 0;
        if (it->tasks)
            snprintf(p_click, sizeof p_click, "%.4f", (double)it->tasks->p_click);
        if (it->attrs) {
            snprintf(category, sizeof category, "%u", it->attrs->category);
            snprintf(author, sizeof author, "%llu", (unsigned long long)it->attrs->author_id);
        }
        for (size_t c = 0; c < it->n_channels && off < sizeof channels; c++)
            off += (size_t)snprintf(channels + off, sizeof channels - off, "%s%s", c ? "," : "",
                                    it->channels[c]);
        fprintf(out, "%4u  %-20llu %10.4f %10.4f %10.4f %8s %9s %10s  %-24s ", it->position,
                (unsigned long long)it->item_id, (double)it->score, (double)it->rank_score,
                (double)it->rerank_score, p_click, category, author, channels);
        print_reason(out, it);
        fputc('\n', out);
    }
}

static void print_trace(FILE *out, const Cascade__V1__RecommendResponse *resp)
{
    fprintf(out, "trace:\n  %-18s %-18s %10s %7s %7s  %s\n", "stage", "status", "latency_ms", "in",
            "out", "message");
    for (size_t i = 0; i < resp->n_trace; i++) {
        const Cascade__V1__StageTrace *t = resp->trace[i];
        fprintf(out, "  %-18s %-18s %10.2f %7u %7u  %s%s\n", t->stage,
                cascade_grpc_status_name((grpc_status_code)t->status_code), t->latency_us / 1000.0,
                t->items_in, t->items_out, t->degraded ? "[degraded] " : "", t->message);
    }
}

void cascade_cli_print_recommendation(FILE *out, const char *user,
                                      const Cascade__V1__RecommendResponse *resp, bool debug)
{
    fprintf(out, "user %s  request %s  %zu item%s\n", user, resp->request_id, resp->n_items,
            resp->n_items == 1 ? "" : "s");
    print_experiments(out, resp->experiments);
    print_items(out, resp);
    if (resp->degraded) {
        fprintf(out, "degraded:\n");
        for (size_t i = 0; i < resp->n_degraded_reasons; i++)
            fprintf(out, "  - %s\n", resp->degraded_reasons[i]);
    }
    if (debug)
        print_trace(out, resp);
}
