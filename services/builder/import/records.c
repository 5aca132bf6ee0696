/* Item and user records from the data set (see records.h). */
#include "records.h"

#include <string.h>

void cascade_item_stats_add(cascade_v1_ItemStats *st, const struct cascade_ds_event *e)
{
    switch (e->type) {
    case CASCADE_EV_IMPRESSION:
        st->impressions++;
        break;
    case CASCADE_EV_CLICK:
        st->clicks++;
        break;
    case CASCADE_EV_LIKE:
        st->likes++;
        break;
    case CASCADE_EV_COLLECT:
        st->collects++;
        break;
    case CASCADE_EV_SHARE:
        st->shares++;
        break;
    case CASCADE_EV_PLAY:
        st->plays++;
        st->play_seconds += e->value;
        break;
    default:
        break;
    }
}

void cascade_user_stats_add(struct cascade_user_stats *st, const struct cascade_ds_event *e)
{
    cascade_user_stats_observe(st, e->type);
}

void cascade_item_record_fill(const struct cascade_ds_item *it, const cascade_v1_ItemStats *st,
                              cascade_v1_ItemRecord *rec)
{
    memset(rec, 0, sizeof(*rec));
    rec->item_id = it->id;
    rec->author_id = it->author_id;
    rec->category = it->category;
    rec->tags_count = (pb_size_t)it->n_tags;
    memcpy(rec->tags, it->tags, it->n_tags * sizeof(uint32_t));
    rec->created_at_s = it->created_at;
    memcpy(rec->geohash, it->geohash, sizeof(rec->geohash));
    rec->city = it->city;
    rec->media_type = it->media_type;
    rec->duration_s = it->duration_s;
    rec->has_stats = true;
    if (st)
        rec->stats = *st;
}

void cascade_user_record_fill(const struct cascade_ds_user *u, const struct cascade_user_stats *st,
                              const struct cascade_affinity *aff, int64_t now, double half_life_s,
                              cascade_v1_UserRecord *rec)
{
    memset(rec, 0, sizeof(*rec));
    memcpy(rec->user_id, u->id, sizeof(rec->user_id));
    rec->age = u->age;
    rec->gender = u->gender;
    rec->city = u->city;
    memcpy(rec->geohash, u->geohash, sizeof(rec->geohash));
    rec->interests_count = (pb_size_t)u->n_interests;
    memcpy(rec->interests, u->interests, u->n_interests * sizeof(uint32_t));
    if (aff)
        cascade_affinity_to_record(aff, now, half_life_s, rec);
    if (st) {
        rec->interactions = st->interactions;
        rec->impressions = st->impressions;
        rec->clicks = st->clicks;
    }
}
