/* cascade-rerank: serves cascade.v1.ReRank (MMR) over gRPC.
 * Thin wrapper: options, the stage, the run loop. No Redis needed. */
#include <stdio.h>

#include "rerank.h"
#include "service.h"

static const char extra_usage[] =
    "ReRank config keys:\n"
    "  rerank.lambda                   MMR relevance/diversity trade-off in [0,1] (default 0.7;\n"
    "                                  experiment param \"rerank.lambda\" overrides it per "
    "request)\n"
    "  rerank.sim.category             similarity of two items in one category (default 0.7)\n"
    "  rerank.sim.author               similarity of two items by one author (default 0.3)\n"
    "  rerank.sim.embedding            weight of the embedding cosine (default 1.0)\n"
    "  rerank.max_candidates           largest candidate list accepted (default 5000)\n"
    "  rerank.max_count                largest count a request may ask for (default 1000)\n";

int main(int argc, char **argv)
{
    struct cascade_service_opts opts = {0};
    cascade_metrics *metrics = NULL;
    cascade_rerank *rerank = NULL;
    char err[512];
    int code = 1;

    cascade_signals_block();
    cascade_rpc_init();
    int rc = cascade_service_parse_args("rerank", 50055, extra_usage, argc, argv, &opts);
    if (rc != 0) {
        code = rc == 1 ? 0 : 2;
        goto out;
    }
    if (!(metrics = cascade_service_metrics(&opts)))
        goto out;
    if (!(rerank = cascade_rerank_create(opts.config, err, sizeof err))) {
        fprintf(stderr, "cascade-rerank: %s\n", err);
        goto out;
    }
    size_t n_methods;
    const struct cascade_rpc_method *methods = cascade_rerank_methods(&n_methods);
    code = cascade_service_run(&opts, metrics, "cascade.v1.ReRank", methods, n_methods, rerank);
out:
    cascade_rerank_destroy(rerank);
    cascade_metrics_destroy(metrics);
    cascade_service_opts_free(&opts);
    cascade_rpc_shutdown();
    return code;
}
