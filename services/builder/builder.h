/* The builder library (libcascade_builder): Cascade's offline side, the jobs
 * behind cascade-build and cascade-datagen. Formats and procedures are
 * documented in docs/data.md; the trainers in docs/stages.md, docs/mmoe.md
 * and docs/twotower.md.
 *  - data: the data set and its TSV format (dataset.h), the synthetic world
 *    (datagen.h, drawing from common/rng.h), the MovieLens importers (movielens.h);
 *  - load: the Redis records (records.h, interests.h) and their load (load.h);
 *  - recall indexes, each published as a generation of its family
 *    (family.h): ItemCF, Swing, UserCF (itemcf.h, swing.h, usercf.h over
 *    cf_index.h, cf_run.h, cf_lists.h, cf_config.h; written by
 *    cf_publish.h), EASE (ease_lists.h), the hot/new/geo/city lists (lists.h)
 *    and the author indexes (authors.h);
 *  - the four trainers: train-rank, the logistic-regression ranker
 *    (train_rank.h); train-mmoe, the multi-task ranker (train_mmoe.h);
 *    train-prerank, the hashed-feature pre-ranker (train_prerank.h);
 *    train-two-tower, the retrieval model (train_twotower.h, tt_hardneg.h,
 *    tt_warm.h); with what they share: the model gate (train_gate.h), warm
 *    start (train_warm.h) and epoch progress (train_progress.h). The learned
 *    rankers (`cascade-build train ltr`) live in services/ltr;
 *  - the command line (build_cli.h, flags.h, progress.h, pipeline.h,
 *    timescale.h, topk.h).
 * This umbrella header includes only the data, load, ItemCF/Swing/UserCF,
 * train-rank and command-line headers listed below; nothing includes it
 * today: every file includes the module headers it needs. */
#ifndef CASCADE_BUILDER_H
#define CASCADE_BUILDER_H

#include "build_cli.h"
#include "cf_publish.h"
#include "datagen.h"
#include "dataset.h"
#include "interests.h"
#include "itemcf.h"
#include "load.h"
#include "movielens.h"
#include "records.h"
#include "swing.h"
#include "train_rank.h"
#include "usercf.h"

#endif
