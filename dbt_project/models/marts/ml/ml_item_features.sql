-- Grain: (item_id, event_timestamp). Items with any event in the 90 days
-- before the snapshot; popularity counts every purchase line, anonymous
-- ones included. Only events strictly before event_timestamp count, and the
-- catalogue only as far as it was loaded before it.

with

snapshots as (

    select event_timestamp
    from {{ ref('int_feature_snapshots') }}

),

events as (

    select
        item_id,
        user_id,
        event_type,
        event_at,
        price_amount
    from {{ ref('stg_raw__events') }}

),

catalogue as (

    select
        item_id,
        price_amount,
        first_ingested_at
    from {{ ref('stg_raw__items') }}

),

recent_events as (

    -- the events of the 90 days before each snapshot
    select
        events.*,
        snapshots.event_timestamp
    from snapshots
    inner join events
        on
            snapshots.event_timestamp > events.event_at
            and snapshots.event_timestamp - interval '90 days'
            <= events.event_at

),

window_features as (

    select
        item_id,
        event_timestamp,
        count(
            case
                when
                    event_type = 'purchase'
                    and event_at >= event_timestamp - interval '7 days'
                    then 1
            end
        ) as count_purchases_7d,
        count(
            case
                when
                    event_type = 'purchase'
                    and event_at >= event_timestamp - interval '30 days'
                    then 1
            end
        ) as count_purchases_30d,
        count(
            case when event_type = 'purchase' then 1 end
        ) as count_purchases_90d,
        count(
            distinct case
                when
                    event_type = 'purchase'
                    and event_at >= event_timestamp - interval '30 days'
                    then user_id
            end
        ) as count_buyers_30d,
        count(
            distinct case when event_type = 'purchase' then user_id end
        ) as count_buyers_90d,
        count(
            case
                when
                    event_type = 'view'
                    and event_at >= event_timestamp - interval '30 days'
                    then 1
            end
        ) as count_views_30d,
        count(
            case when event_type = 'return' then 1 end
        ) as count_returns_90d,
        percentile_cont(0.5) within group (
            order by case when price_amount > 0 then price_amount end
        ) as median_price_amount_90d
    from recent_events
    group by item_id, event_timestamp

),

item_features as (

    select
        window_features.*,
        -- recent daily purchase rate over the 30-day rate, smoothed; in
        -- double precision on both engines (no numeric on PostgreSQL)
        (
            cast(window_features.count_purchases_7d as double precision) / 7
            + 0.1
        )
        / (
            cast(window_features.count_purchases_30d as double precision)
            / 30
            + 0.1
        ) as trend_ratio,
        -- point in time: the median price paid in the 90 days before the
        -- snapshot; the catalogue's price only when the catalogue row was
        -- loaded before the snapshot (a derived catalogue, e.g. Online
        -- Retail's whole-file median, is loaded after every past snapshot)
        coalesce(
            window_features.median_price_amount_90d,
            case
                when
                    catalogue.first_ingested_at
                    < window_features.event_timestamp
                    then catalogue.price_amount
            end
        ) as price_amount,
        -- capped at 1: a UCI cancellation may undo a purchase older than
        -- the 90 days, so returns can outnumber the window's purchases
        case
            when window_features.count_purchases_90d > 0
                then
                    least(
                        cast(
                            window_features.count_returns_90d
                            as double precision
                        )
                        / window_features.count_purchases_90d,
                        1.0
                    )
        end as return_rate_90d
    from window_features
    left join catalogue
        on window_features.item_id = catalogue.item_id

)

select
    cast(item_id as text) as item_id,
    cast(event_timestamp as timestamp) as event_timestamp,
    cast(count_purchases_7d as bigint) as count_purchases_7d,
    cast(count_purchases_30d as bigint) as count_purchases_30d,
    cast(count_purchases_90d as bigint) as count_purchases_90d,
    cast(count_buyers_30d as bigint) as count_buyers_30d,
    cast(count_buyers_90d as bigint) as count_buyers_90d,
    cast(count_views_30d as bigint) as count_views_30d,
    cast(trend_ratio as double precision) as trend_ratio,
    cast(price_amount as double precision) as price_amount,
    cast(count_returns_90d as bigint) as count_returns_90d,
    cast(return_rate_90d as double precision) as return_rate_90d
from item_features
