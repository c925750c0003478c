-- Grain: (user_id, event_timestamp). Users with any event in the 90 days
-- before the snapshot; every feature uses only events strictly before
-- event_timestamp (point-in-time correct).

with

snapshots as (

    select event_timestamp
    from {{ ref('int_feature_snapshots') }}

),

interactions as (

    select
        event_id,
        user_id,
        item_id,
        event_type,
        event_at,
        order_id,
        case
            when event_type = 'purchase'
                then coalesce(quantity, 1) * coalesce(price_amount, 0)
        end as purchase_amount
    from {{ ref('fct_interactions') }}

),

recent_events as (

    -- the events of the 90 days before each snapshot
    select
        interactions.*,
        snapshots.event_timestamp
    from snapshots
    inner join interactions
        on
            snapshots.event_timestamp > interactions.event_at
            and snapshots.event_timestamp - interval '90 days'
            <= interactions.event_at

),

window_features as (

    select
        user_id,
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
                when event_type = 'purchase'
                    then coalesce(order_id, event_id)
            end
        ) as count_orders_90d,
        coalesce(
            sum(
                case
                    when event_at >= event_timestamp - interval '7 days'
                        then purchase_amount
                end
            ),
            0
        ) as spend_amount_7d,
        coalesce(
            sum(
                case
                    when event_at >= event_timestamp - interval '30 days'
                        then purchase_amount
                end
            ),
            0
        ) as spend_amount_30d,
        coalesce(sum(purchase_amount), 0) as spend_amount_90d,
        count(
            distinct case when event_type = 'purchase' then item_id end
        ) as count_distinct_items_90d,
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
        ) as count_returns_90d
    from recent_events
    group by user_id, event_timestamp

),

daily_last_purchases as (

    select
        user_id,
        max(event_at) as last_purchase_at
    from interactions
    where event_type = 'purchase'
    group by user_id, cast(event_at as date)

),

last_purchases as (

    -- the last purchase before the snapshot, however long ago
    select
        window_features.user_id,
        window_features.event_timestamp,
        max(daily_last_purchases.last_purchase_at) as last_purchase_at
    from window_features
    inner join daily_last_purchases
        on
            window_features.user_id = daily_last_purchases.user_id
            and window_features.event_timestamp
            > daily_last_purchases.last_purchase_at
    group by window_features.user_id, window_features.event_timestamp

)

select
    cast(window_features.user_id as text) as user_id,
    cast(window_features.event_timestamp as timestamp) as event_timestamp,
    cast(window_features.count_purchases_7d as bigint) as count_purchases_7d,
    cast(window_features.count_purchases_30d as bigint)
        as count_purchases_30d,
    cast(window_features.count_purchases_90d as bigint)
        as count_purchases_90d,
    cast(window_features.count_orders_90d as bigint) as count_orders_90d,
    cast(window_features.spend_amount_7d as double precision)
        as spend_amount_7d,
    cast(window_features.spend_amount_30d as double precision)
        as spend_amount_30d,
    cast(window_features.spend_amount_90d as double precision)
        as spend_amount_90d,
    cast(window_features.count_distinct_items_90d as bigint)
        as count_distinct_items_90d,
    cast(window_features.count_views_30d as bigint) as count_views_30d,
    cast(window_features.count_returns_90d as bigint) as count_returns_90d,
    cast(
        cast(window_features.event_timestamp as date)
        - cast(last_purchases.last_purchase_at as date)
        as double precision
    ) as days_since_last_purchase
from window_features
left join last_purchases
    on
        window_features.user_id = last_purchases.user_id
        and window_features.event_timestamp = last_purchases.event_timestamp
