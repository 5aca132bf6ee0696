/* The builder library (libcascade_builder): Cascade's offline side. The data
 * set and its TSV format (dataset.h), the synthetic world (datagen.h), the
 * MovieLens importers (movielens.h), the Redis load (load.h), ItemCF
 * (itemcf.h), ranking training (train_rank.h) and the cascade-build command
 * line (build_cli.h). Formats and procedures are documented in docs/data.md. */
#ifndef CASCADE_BUILDER_H
#define CASCADE_BUILDER_H

#include "build_cli.h"
#include "datagen.h"
#include "dataset.h"
#include "interests.h"
#include "itemcf.h"
#include "load.h"
#include "movielens.h"
#include "records.h"
#include "train_rank.h"

#endif
