/* The builder library (libcascade_builder): Cascade's offline side. The data
 * set and its TSV format (dataset.h), the synthetic world (datagen.h), the
 * MovieLens importers (movielens.h), the Redis load (load.h), the
 * collaborative-filtering builders ItemCF, Swing and UserCF (itemcf.h,
 * swing.h, usercf.h, published through cf_publish.h), ranking training
 * (train_rank.h) and the cascade-build command line (build_cli.h).
 * Formats and procedures are documented in docs/data.md. */
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
